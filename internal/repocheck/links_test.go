package repocheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoFiles returns the repository's files and directories (relative,
// slash-separated, directories ending in "/"): no hidden directories, no
// build output.
func repoFiles(t *testing.T, root string) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || rel == "bin") {
				return filepath.SkipDir
			}
			files[rel+"/"] = true
			return nil
		}
		files[rel] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)
	// A mention of a document in prose or comments: a path with a
	// directory (docs/serve.md, internal/testnet/API.md) or an upper-case
	// name (API.md).
	upperDoc   = regexp.MustCompile(`^[A-Z][A-Z0-9_]*\.md$`)
	docMention = regexp.MustCompile(`(?:[A-Za-z0-9_.-]+/)+[A-Za-z0-9_.-]+\.(?:md|yaml)\b|\b[A-Z][A-Z0-9_]*\.md\b`)
)

// slug is the anchor GitHub gives a heading: lower case, punctuation other
// than hyphens and underscores dropped, spaces to hyphens.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func anchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		out[slug(m[1])] = true
	}
	return out
}

// TestMarkdownLinksResolve: every relative link in the repository's
// markdown files names a file or directory that exists, and an anchor a
// heading of that file.
func TestMarkdownLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files := repoFiles(t, root)
	links := 0
	for f := range files {
		if !strings.HasSuffix(f, ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), path)))
				if !files[dest] && !files[dest+"/"] {
					t.Errorf("%s: link %q: no %s in the repository", f, target, dest)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			text, err := os.ReadFile(filepath.Join(root, dest))
			if err != nil {
				t.Errorf("%s: link %q: %v", f, target, err)
				continue
			}
			if !anchors(string(text))[anchor] {
				t.Errorf("%s: link %q: %s has no heading for #%s", f, target, dest, anchor)
			}
		}
	}
	if links < 20 {
		t.Errorf("only %d relative links found: the scan is broken", links)
	}
}

// TestDocumentMentionsResolve: a document named in a Go comment or a
// markdown file (docs/facts.md, internal/testnet/API.md, or an upper-case
// name such as API.md) exists in the repository: no pointer to the team's
// notes kept outside it (they named files of a shared directory).
func TestDocumentMentionsResolve(t *testing.T) {
	root := repoRoot(t)
	files := repoFiles(t, root)
	bases := map[string]bool{}
	dirs := map[string]bool{}
	for f := range files {
		bases[filepath.Base(f)] = true
		if top, _, ok := strings.Cut(f, "/"); ok {
			dirs[top] = true
		}
	}
	mentions := 0
	for f := range files {
		if strings.Contains(f, "testdata/") || !strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, ".md") && !strings.HasSuffix(f, ".yaml") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range docMention.FindAllString(string(b), -1) {
			mentions++
			if !strings.Contains(m, "/") {
				if !bases[m] {
					t.Errorf("%s names %s, which is not in the repository", f, m)
				}
				continue
			}
			// A path names a repository file when its first directory is
			// one of the repository's (not "package/README.md" inside a
			// test's archive); it may be relative to the naming file.
			m = strings.TrimPrefix(m, "./")
			top, _, _ := strings.Cut(m, "/")
			if !dirs[top] && top != ".." {
				if base := filepath.Base(m); upperDoc.MatchString(base) && !bases[base] {
					t.Errorf("%s names %s, which is not in the repository", f, m)
				}
				continue
			}
			rel := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), m)))
			if !files[m] && !files[rel] {
				t.Errorf("%s names %s, which is not in the repository", f, m)
			}
		}
	}
	if mentions < 20 {
		t.Errorf("only %d mentions found: the scan is broken", mentions)
	}
}

// TestReadmeStaysAPage: the README is the page a newcomer reads top to
// bottom; a command's reference belongs in docs/<command>.md.
func TestReadmeStaysAPage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 8<<10 {
		t.Errorf("README.md is %d bytes, over 8 KiB: move reference material to docs/", len(b))
	}
	for i, line := range strings.Split(string(b), "\n") {
		if len(line) > 200 {
			t.Errorf("README.md line %d is %d characters long", i+1, len(line))
		}
	}
}
