package hookwire_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hookwire/hookwire"

// otelAPI is the OpenTelemetry API: the packages that record telemetry
// without choosing where it goes (the SDK and exporters live in otel/).
var otelAPI = []string{"go.opentelemetry.io/otel/attribute", "go.opentelemetry.io/otel/codes", "go.opentelemetry.io/otel/metric", "go.opentelemetry.io/otel/propagation", "go.opentelemetry.io/otel/semconv/", "go.opentelemetry.io/otel/trace"}

// deps is what each package may import, besides the standard library: other
// hookwire packages (by path inside the module) and third-party import
// path prefixes. A package that is not listed fails the test: add its row
// when you add it, and think about what it should depend on. "*" allows
// anything (the commands, which wire everything together).
var deps = map[string]struct {
	hookwire   []string
	thirdParty []string
	noStd      []string // standard packages it must not import, with those under them
}{
	"bridge":                   {thirdParty: otelAPI, noStd: []string{"net/http"}},
	"bridge/memstream":         {hookwire: []string{"bridge"}},
	"bridge/redisstream":       {hookwire: []string{"bridge"}, thirdParty: []string{"github.com/redis/go-redis/v9", "go.opentelemetry.io/otel/trace"}},
	"bridge/streamtest":        {hookwire: []string{"bridge"}},
	"auth":                     {hookwire: []string{"internal/reload"}, thirdParty: []string{"github.com/golang-jwt/jwt/v5", "github.com/MicahParks/", "golang.org/x/time/rate"}},
	"problem":                  {},
	"otel":                     {thirdParty: []string{"go.opentelemetry.io/", "github.com/prometheus/client_golang/", "github.com/redis/go-redis/"}},
	"ingest":                   {hookwire: []string{"auth", "bridge", "ingest/cloudevent", "internal/edge", "internal/jsonobj", "problem", "sources"}, thirdParty: append([]string{"github.com/labstack/echo/v4", "golang.org/x/time/rate"}, otelAPI...)},
	"ingest/cloudevent":        {hookwire: []string{"bridge", "internal/jsonobj"}},
	"subscribers":              {hookwire: []string{"auth", "bridge", "ingest/cloudevent", "internal/drain", "problem"}, thirdParty: append([]string{"github.com/gorilla/websocket", "golang.org/x/time/rate"}, otelAPI...)},
	"sources":                  {hookwire: []string{"bridge", "internal/reload"}, thirdParty: append([]string{"cel.dev/cel-go/", "github.com/oasdiff/yaml"}, otelAPI...)},
	"client":                   {thirdParty: []string{"github.com/gorilla/websocket"}},
	"web":                      {},
	"internal/drain":           {},
	"internal/jsonobj":         {},
	"internal/edge":            {hookwire: []string{"problem"}, thirdParty: []string{"github.com/labstack/echo/v4"}},
	"internal/reload":          {},
	"internal/syncbuf":         {},
	"internal/redistest":       {hookwire: []string{"internal/syncbuf"}, thirdParty: []string{"github.com/redis/go-redis/v9"}},
	"cmd/hookwire":             {hookwire: []string{"*"}, thirdParty: []string{"*"}},
	"cmd/hookwire-bench":       {hookwire: []string{"auth"}, thirdParty: []string{"github.com/gorilla/websocket"}},
	"cmd/hookwire-bench/floor": {thirdParty: []string{"github.com/golang-jwt/jwt/v5", "github.com/gorilla/websocket", "github.com/redis/go-redis/v9"}},
}

// TestDeps checks every package's imports (not its tests') against deps,
// and keeps bridge, the core, free of HTTP, WebSocket, JWT and broker code
// also through what it imports.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == module {
			continue
		}
		pkg := strings.TrimPrefix(fields[0], module+"/")
		rule, ok := deps[pkg]
		if !ok {
			t.Errorf("%s has no row in deps_test.go: say what it may import", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			switch {
			case strings.HasPrefix(imp, module+"/"):
				dep := strings.TrimPrefix(imp, module+"/")
				if !slices.Contains(rule.hookwire, "*") && !slices.Contains(rule.hookwire, dep) {
					t.Errorf("%s imports %s, which its row does not allow", pkg, dep)
				}
			case !strings.Contains(strings.SplitN(imp, "/", 2)[0], "."): // the standard library
				if slices.ContainsFunc(rule.noStd, func(p string) bool { return imp == p || strings.HasPrefix(imp, p+"/") }) {
					t.Errorf("%s imports %s", pkg, imp)
				}
			default:
				if !slices.ContainsFunc(rule.thirdParty, func(p string) bool {
					return p == "*" || imp == p || strings.HasSuffix(p, "/") && strings.HasPrefix(imp, p) || strings.HasPrefix(imp, p+"/")
				}) {
					t.Errorf("%s imports %s, which its row does not allow", pkg, imp)
				}
			}
		}
	}

	out, err = exec.Command("go", "list", "-f", "{{join .Deps \" \"}}", module+"/bridge").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range []string{"github.com/labstack/", "github.com/gorilla/", "github.com/golang-jwt/", "github.com/redis/", "go.opentelemetry.io/otel/sdk"} {
			if strings.HasPrefix(dep, f) {
				t.Errorf("bridge depends on %s", dep)
			}
		}
	}
}
