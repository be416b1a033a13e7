package bridge_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the core free of HTTP, WebSocket, JWT and broker code.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hookwire/hookwire/bridge").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"net/http", "github.com/labstack/", "github.com/gorilla/", "github.com/golang-jwt/", "github.com/redis/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("bridge imports %s", dep)
			}
		}
	}
}
