package bridge_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the core free of HTTP, WebSocket, JWT and broker code. The
// OpenTelemetry API's propagation package brings net/http in (for its
// header carrier), so net/http is checked among bridge's own imports only.
func TestDeps(t *testing.T) {
	list := func(format string) []string {
		out, err := exec.Command("go", "list", "-f", format, "github.com/hookwire/hookwire/bridge").CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return strings.Fields(strings.Trim(strings.TrimSpace(string(out)), "[]"))
	}
	for _, dep := range list("{{.Deps}}") {
		for _, f := range []string{"github.com/labstack/", "github.com/gorilla/", "github.com/golang-jwt/", "github.com/redis/", "go.opentelemetry.io/otel/sdk"} {
			if strings.HasPrefix(dep, f) {
				t.Errorf("bridge depends on %s", dep)
			}
		}
	}
	for _, imp := range list("{{.Imports}}") {
		if strings.HasPrefix(imp, "net/http") {
			t.Errorf("bridge imports %s", imp)
		}
	}
}
