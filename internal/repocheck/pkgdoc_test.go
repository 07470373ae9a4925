package repocheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot walks up from the test's directory to the one holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// TestEveryPackageHasDoc fails when a package has no "// Package x ..." comment
// (or "// Command x ..." for a main package) in any of its non-test files.
func TestEveryPackageHasDoc(t *testing.T) {
	root := repoRoot(t)
	pkgs := map[string]bool{} // directory -> has doc
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		has := pkgs[dir]
		if f.Doc != nil {
			text := f.Doc.Text()
			has = has || strings.HasPrefix(text, "Package "+f.Name.Name+" ") || strings.HasPrefix(text, "Command ")
		}
		pkgs[dir] = has
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 3 {
		t.Fatalf("found only %d packages under %s: the walk is broken", len(pkgs), root)
	}
	for dir, has := range pkgs {
		if !has {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package in %s has no package comment (\"// Package name ...\")", rel)
		}
	}
}
