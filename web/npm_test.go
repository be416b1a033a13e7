package web_test

// The npm package @hookwire/client (web/package.json): the client's tests
// under Node's test runner against real `hookwire serve --dev` processes,
// and `npm pack` installed into an empty project, imported, and its
// TypeScript declarations checked by `tsc --noEmit` against a typed usage
// example (web/test/usage.ts). Under CI a missing node or npm fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwire/hookwire/internal/redistest"
)

// shared is a temp dir for the whole run: the hookwire binary and the
// TypeScript install, each made once.
var shared string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookwire-web")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lookTool returns a tool from PATH, or skips (fails under CI).
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not on PATH; CI runs the browser client's tests with it", name)
		}
		t.Skipf("%s not on PATH", name)
	}
	return p
}

// cleanEnv is the environment without HOOKWIRE_* and OTEL_* variables,
// plus env.
func cleanEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKWIRE_") && !strings.HasPrefix(kv, "OTEL_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// hookwireBinary builds cmd/hookwire once per run.
func hookwireBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(shared, "hookwire")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/hookwire/hookwire/cmd/hookwire").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// nodeArgs are node's flags for a global WebSocket: none on Node 22+,
// --experimental-websocket on 20.10+. Older nodes (Debian 12's is 18) have
// none: the test skips, or fails under CI.
func nodeArgs(t *testing.T, node string) []string {
	t.Helper()
	for _, args := range [][]string{nil, {"--experimental-websocket"}} {
		out, _ := exec.Command(node, append(args, "-e", "process.stdout.write(typeof WebSocket)")...).Output()
		if string(out) == "function" {
			return args
		}
	}
	version, _ := exec.Command(node, "--version").Output()
	msg := fmt.Sprintf("node %s has no WebSocket: the client tests need Node 20.10 or later", strings.TrimSpace(string(version)))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}

func TestClientAgainstServer(t *testing.T) {
	node := lookTool(t, "node")
	bin := hookwireBinary(t)
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	args := append(nodeArgs(t, node), "--test", "--test-concurrency=1", "--test-reporter=tap", "test/client.test.mjs")
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = cleanEnv("HOOKWIRE_BIN="+bin, "HOOKWIRE_TEST_REDIS_URL="+rs.URL())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test test/client.test.mjs: %v\n%s", err, out)
	}
	// The TAP summary and the tests' diagnostics.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ok ") || strings.HasPrefix(line, "# ") {
			t.Log(line)
		}
	}
	if !bytes.Contains(out, []byte("# fail 0")) || bytes.Contains(out, []byte("# pass 0")) {
		t.Errorf("unexpected summary:\n%s", out)
	}
}

// pkg is the part of package.json these tests check.
type pkg struct {
	Name            string            `json:"name"`
	Version         string            `json:"version"`
	Type            string            `json:"type"`
	Main            string            `json:"main"`
	Types           string            `json:"types"`
	Files           []string          `json:"files"`
	Exports         map[string]any    `json:"exports"`
	Dependencies    map[string]string `json:"dependencies"`
	PeerDeps        map[string]string `json:"peerDependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
}

func readPkg(t *testing.T) pkg {
	t.Helper()
	b, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	var p pkg
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("package.json: %v", err)
	}
	return p
}

func TestPackageJSON(t *testing.T) {
	p := readPkg(t)
	if p.Type != "module" {
		t.Errorf("type %q, want module (ESM)", p.Type)
	}
	if len(p.Dependencies)+len(p.PeerDeps) > 0 {
		t.Errorf("runtime dependencies %v %v, want none", p.Dependencies, p.PeerDeps)
	}
	dot, _ := p.Exports["."].(map[string]any)
	if dot["types"] != "./static/hookwire.d.ts" || dot["default"] != "./static/hookwire.js" {
		t.Errorf(`exports["."] = %v, want types ./static/hookwire.d.ts and default ./static/hookwire.js`, p.Exports["."])
	}
	if p.Types != "./static/hookwire.d.ts" || p.Main != "./static/hookwire.js" {
		t.Errorf("types %q main %q", p.Types, p.Main)
	}
	for _, f := range []string{"static/hookwire.js", "static/hookwire.d.ts"} {
		if !slices.Contains(p.Files, f) {
			t.Errorf("files %v lacks %s", p.Files, f)
		}
	}
	if p.DevDependencies["typescript"] == "" {
		t.Error("no typescript devDependency: the declarations are checked with its tsc")
	}
}

var (
	tsOnce sync.Once
	tscJS  string
	tsErr  error
)

// typescript installs package.json's typescript devDependency once per run
// into the shared dir, from npm's cache when it has it, and returns tsc.
func typescript(t *testing.T, npm string) string {
	t.Helper()
	tsOnce.Do(func() {
		dir := filepath.Join(shared, "typescript")
		version := readPkg(t).DevDependencies["typescript"]
		cmd := exec.Command(npm, "install", "--prefer-offline", "--no-audit", "--no-fund", "--no-save", "--prefix", dir, "typescript@"+version)
		if out, err := cmd.CombinedOutput(); err != nil {
			tsErr = fmt.Errorf("npm install typescript@%s: %v\n%s", version, err, out)
			return
		}
		tscJS = filepath.Join(dir, "node_modules", "typescript", "bin", "tsc")
	})
	if tsErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(tsErr)
		}
		t.Skipf("no TypeScript (offline?): %v", tsErr)
	}
	return tscJS
}

func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

// TestNpmPackage packs the package, installs the tarball into an empty
// project (offline: it has no dependencies), imports it there, and checks
// the typed usage example against the installed declarations.
func TestNpmPackage(t *testing.T) {
	node := lookTool(t, "node")
	npm := lookTool(t, "npm")
	p := readPkg(t)
	tmp := t.TempDir()

	out := run(t, ".", npm, "pack", "--json", "--pack-destination", tmp)
	var packed []struct {
		Filename string `json:"filename"`
		Files    []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	if err := json.Unmarshal(out, &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --json: %v\n%s", err, out)
	}
	var files []string
	for _, f := range packed[0].Files {
		files = append(files, f.Path)
	}
	slices.Sort(files)
	if want := []string{"README.md", "package.json", "static/hookwire.d.ts", "static/hookwire.js"}; !slices.Equal(files, want) {
		t.Errorf("the tarball holds %v, want %v", files, want)
	}
	tarball := filepath.Join(tmp, packed[0].Filename)

	proj := filepath.Join(tmp, "project")
	if err := os.Mkdir(proj, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"consumer","private":true,"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, proj, npm, "install", "--offline", "--no-audit", "--no-fund", tarball)
	installed := filepath.Join(proj, "node_modules", filepath.FromSlash(p.Name), "package.json")
	if _, err := os.Stat(installed); err != nil {
		t.Fatalf("not installed: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(proj, "node_modules")); len(entries) > 2 { // @hookwire and .package-lock.json
		t.Errorf("installing the package pulled in more: %v", entries)
	}

	// Imported by name, statically and dynamically: the same class.
	check := `
import { HookwireClient } from '` + p.Name + `';
import Default from '` + p.Name + `';
import assert from 'node:assert/strict';
assert.equal(typeof HookwireClient, 'function');
assert.equal(Default, HookwireClient);
const c = new HookwireClient({ url: 'ws://127.0.0.1:9/v1/ws', token: 't', WebSocket: class { constructor(u) { this.url = u; } } });
assert.equal(c.cursor, null);
assert.deepEqual(c.channels, []);
const m = await import('` + p.Name + `');
assert.equal(m.HookwireClient, HookwireClient);
console.log('ok');
`
	if err := os.WriteFile(filepath.Join(proj, "check.mjs"), []byte(check), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(run(t, proj, node, "check.mjs"))); got != "ok" {
		t.Errorf("check.mjs printed %q", got)
	}

	// The declarations, against the installed package.
	tsc := typescript(t, npm)
	for _, f := range []string{"usage.ts", "tsconfig.json"} {
		b, err := os.ReadFile(filepath.Join("test", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proj, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, proj, node, tsc, "--noEmit", "-p", "tsconfig.json")

	// And tsc can fail: a wrong use is refused.
	bad := "import { HookwireClient } from '" + p.Name + "';\nnew HookwireClient({ channels: 'one' });\n"
	if err := os.WriteFile(filepath.Join(proj, "usage.ts"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, tsc, "--noEmit", "-p", "tsconfig.json")
	cmd.Dir = proj
	if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("TS2322")) {
		t.Errorf("tsc accepted channels: 'one' (%v):\n%s", err, out)
	}
}
