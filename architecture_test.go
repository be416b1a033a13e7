package hookwire_test

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// notPaths are names in backquotes in docs/ARCHITECTURE.md that look like
// paths of the repository and are not: import paths of other modules.
var notPaths = []string{"net/http"}

// TestArchitectureIsTrue keeps docs/ARCHITECTURE.md from going stale: every
// package of the module has its name in it, and every path it names exists.
// A bare file name (`conn.go`) must be in a directory that the same table
// row or paragraph names (`subscribers`, `subscribers/server.go`), or at the
// root.
func TestArchitectureIsTrue(t *testing.T) {
	b, err := os.ReadFile("docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	out, err := exec.Command("go", "list", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		dir := strings.TrimPrefix(pkg, module+"/")
		if dir != module && !strings.Contains(doc, "`"+dir+"`") {
			t.Errorf("docs/ARCHITECTURE.md does not name the package `%s`", dir)
		}
	}

	pathLike := regexp.MustCompile(`^[a-z][a-z0-9_.*-]*(/[a-z0-9_.*-]+)*/?$`)
	fileLike := regexp.MustCompile(`\.(go|md|yaml|yml|js|json|sh)$`)
	checked := 0
	for _, block := range blocks(doc) {
		var names []string // the path-like names of the block, in order
		dirs := []string{"."}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(block, -1) {
			name := m[1]
			if !pathLike.MatchString(name) || slices.Contains(notPaths, name) {
				continue
			}
			if !strings.Contains(name, "/") && !fileLike.MatchString(name) {
				// A bare word: a directory when one has that name
				// (`ingest`), else not a path at all (`admit`).
				if fi, err := os.Stat(name); err == nil && fi.IsDir() {
					dirs = append(dirs, name)
				}
				continue
			}
			names = append(names, name)
			if fileLike.MatchString(name) {
				dirs = append(dirs, path.Dir(name))
			} else {
				dirs = append(dirs, strings.TrimSuffix(name, "/"))
			}
		}
		for _, name := range names {
			checked++
			if strings.Contains(name, "/") {
				if !exists(strings.TrimSuffix(name, "/")) {
					t.Errorf("docs/ARCHITECTURE.md names %s, which does not exist", name)
				}
				continue
			}
			if !slices.ContainsFunc(dirs, func(d string) bool { return exists(filepath.Join(d, name)) }) {
				t.Errorf("docs/ARCHITECTURE.md names %s, which is in none of the directories named beside it (%v)", name, dirs)
			}
		}
	}
	t.Logf("%d paths checked", checked)
	if checked < 20 {
		t.Errorf("only %d paths checked in docs/ARCHITECTURE.md: the test no longer reads it right", checked)
	}
}

// blocks splits markdown into its table rows and its paragraphs (a list is
// one paragraph).
func blocks(doc string) []string {
	var out []string
	var para []string
	flush := func() {
		if len(para) > 0 {
			out = append(out, strings.Join(para, "\n"))
			para = nil
		}
	}
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "|"):
			flush()
			out = append(out, line)
		case strings.TrimSpace(line) == "":
			flush()
		default:
			para = append(para, line)
		}
	}
	flush()
	return out
}

// exists reports whether name, a path from the root that may hold a
// glob, matches a file or directory.
func exists(name string) bool {
	m, err := filepath.Glob(filepath.FromSlash(name))
	return err == nil && len(m) > 0
}
