package dlq

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestReasonsAreWellFormed(t *testing.T) {
	word := regexp.MustCompile(`^[a-z]+(-[a-z]+)+$`)
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		if !word.MatchString(string(r.Reason)) {
			t.Errorf("reason %q: want lower-case words joined by hyphens", r.Reason)
		}
		if seen[r.Reason] {
			t.Errorf("reason %q is listed twice", r.Reason)
		}
		seen[r.Reason] = true
		if r.Meaning == "" || strings.Contains(r.Meaning, "\n") {
			t.Errorf("reason %q: want a one-line meaning, got %q", r.Reason, r.Meaning)
		}
		if !r.Reason.Known() {
			t.Errorf("reason %q is listed but not Known", r.Reason)
		}
	}
	if Reason("provider-rejectd").Known() || Reason("").Known() {
		t.Error("a reason liverelay does not write is Known")
	}
}

// TestDocsNameEveryReason keeps the two places operators read about reasons in step
// with Reasons: the Live-Dlq-Reason row of docs/architecture.md's header table and the
// table of docs/operations.md's section on the reasons. Neither may name a reason
// liverelay does not write.
func TestDocsNameEveryReason(t *testing.T) {
	arch := readDoc(t, "architecture.md")
	row := ""
	for line := range strings.Lines(arch) {
		if strings.HasPrefix(line, "| `"+HeaderReason+"` |") {
			row = strings.TrimPrefix(line, "| `"+HeaderReason+"` |")
		}
	}
	if row == "" {
		t.Fatalf("docs/architecture.md has no %s row in its header table", HeaderReason)
	}
	checkDocNames(t, "docs/architecture.md's "+HeaderReason+" row", row)

	ops := readDoc(t, "operations.md")
	section, inside := "", false
	for line := range strings.Lines(ops) {
		if strings.HasPrefix(line, "## ") {
			inside = strings.Contains(line, "The reasons")
			continue
		}
		if inside && strings.HasPrefix(line, "| `") {
			first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
			section += first + "\n" // the reason column
		}
	}
	if section == "" {
		t.Fatal(`docs/operations.md has no table of reasons under a "## … The reasons …" heading`)
	}
	checkDocNames(t, "docs/operations.md's table of reasons", section)
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkDocNames checks that text names every reason in backquotes, and only reasons.
func checkDocNames(t *testing.T, where, text string) {
	t.Helper()
	for _, r := range Reasons() {
		if !strings.Contains(text, "`"+string(r.Reason)+"`") {
			t.Errorf("%s does not name %s (%s)", where, r.Reason, r.Meaning)
		}
	}
	for _, m := range regexp.MustCompile("`([^`]*)`").FindAllStringSubmatch(text, -1) {
		if !Reason(m[1]).Known() {
			t.Errorf("%s names %q, which is not a reason liverelay writes", where, m[1])
		}
	}
}

// TestReasonsListEveryDeclaredReason reads the module's code: every Reason constant of
// packages dlq and event is in Reasons, no other package declares one, and no code
// spells a reason as a bare string instead of using its constant.
func TestReasonsListEveryDeclaredReason(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		owner := strings.HasPrefix(rel, "internal/dlq/") || strings.HasPrefix(rel, "internal/event/")
		declared := map[*ast.BasicLit]bool{}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					declared[lit] = true
					v, _ := strconv.Unquote(lit.Value)
					switch {
					case !owner:
						t.Errorf("%s: %s = %q: declare dead-letter reasons in internal/dlq/reason.go", fset.Position(name.Pos()), name.Name, v)
					case !Reason(v).Known():
						t.Errorf("%s: %s = %q is not in dlq.Reasons", fset.Position(name.Pos()), name.Name, v)
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || declared[lit] {
				return true
			}
			if v, _ := strconv.Unquote(lit.Value); Reason(v).Known() {
				t.Errorf("%s: %q spelled out; use its constant", fset.Position(lit.Pos()), v)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
