package api

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// jsonNames returns the JSON names of the fields of the struct types of
// vs, embedded structs' included.
func jsonNames(vs ...any) map[string]bool {
	out := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case f.Anonymous && name == "":
				walk(f.Type)
			case name != "" && name != "-":
				out[name] = true
			}
		}
	}
	for _, v := range vs {
		walk(reflect.TypeOf(v))
	}
	return out
}

// fetchResponse are the members of a fetch Response the script reads
// through variables that elsewhere hold the page's types (r, x, j).
var fetchResponse = []string{"ok", "status", "headers", "json", "text", "arrayBuffer"}

// scriptVars maps the variables of app.js to the types they hold.
var scriptVars = []struct {
	name  string
	types []any
	also  []string
}{
	{"sess", []any{Session{}}, nil},
	{"st", []any{Turn{}, Claim{}}, nil},
	{"fam", []any{SessionFamily{}}, nil},
	{"r", []any{Rung{}}, fetchResponse},        // a rung, or the answer of a fetch
	{"res", []any{BrowserRung{}}, nil},         // the rung result testRung builds
	{"x", []any{BrowserRung{}}, fetchResponse}, // a rung result, or the answer of a fetch
	{`retried\[k\]`, []any{BrowserRung{}}, nil},
	{"rf", []any{RefineFamily{}}, nil},
	{"ref", []any{Refinement{}}, nil},
	{"rep", []any{Submitted{}}, nil},
	{"j", []any{Uploaded{}, CertificateRefused{}}, fetchResponse},
}

func readScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../web/static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPageScriptReads: every field app.js reads of the server's answers,
// or sets on what it posts, is a field of the api type it holds; the
// server drops what it does not know, and the page reads undefined.
func TestPageScriptReads(t *testing.T) {
	js := readScript(t)
	for _, v := range scriptVars {
		known := jsonNames(v.types...)
		for _, a := range v.also {
			known[a] = true
		}
		re := regexp.MustCompile(`(?:^|[^\w.])` + v.name + `\.([A-Za-z_]\w*)`)
		used := 0
		for _, m := range re.FindAllStringSubmatch(js, -1) {
			used++
			if !known[m[1]] {
				t.Errorf("app.js uses %s.%s: no such field in %s", v.name, m[1], typeNames(v.types))
			}
		}
		if used == 0 {
			t.Errorf("app.js never uses %s: update the test's table", v.name)
		}
	}
}

// TestPageScriptPosts: the objects app.js posts have the fields of the
// api type the server decodes (which refuses unknown ones), and the rung
// results it builds set every field of BrowserRung.
func TestPageScriptPosts(t *testing.T) {
	js := readScript(t)
	posts := regexp.MustCompile(`postJSON\(([^,]+),\s*\{([^{}]*)\}\)`).FindAllStringSubmatch(js, -1)
	if len(posts) < 4 {
		t.Fatalf("found %d postJSON calls in app.js, want 4 (sessions, start, refine, result)", len(posts))
	}
	for _, p := range posts {
		url, keys := p[1], objectKeys(p[2])
		var want map[string]bool
		switch {
		case strings.Contains(url, "/start"):
			want = map[string]bool{}
		case strings.Contains(url, "/refine"), strings.Contains(url, "/result"):
			want = jsonNames(PageResult{})
		case strings.Contains(url, `"/api/v1/sessions"`):
			want = jsonNames(SessionRequest{})
		default:
			t.Errorf("app.js posts to %s: unknown to the test", url)
			continue
		}
		if !reflect.DeepEqual(keys, want) {
			t.Errorf("app.js posts %v to %s, the server decodes %v", sorted(keys), url, sorted(want))
		}
	}

	// A rung's result: the literal testRung starts from, and what it and
	// testRound set afterwards.
	lit := regexp.MustCompile(`const res = \{([^{}]*)\}`).FindStringSubmatch(js)
	if lit == nil {
		t.Fatal("app.js: no rung result literal (const res = {...})")
	}
	set := objectKeys(lit[1])
	for _, m := range regexp.MustCompile(`(?:\bres|retried\[k\])\.(\w+) = `).FindAllStringSubmatch(js, -1) {
		set[m[1]] = true
	}
	want := jsonNames(BrowserRung{})
	for k := range set {
		if !want[k] {
			t.Errorf("app.js sets %q on a rung result: not a field of BrowserRung %v", k, sorted(want))
		}
	}
	for k := range want {
		if !set[k] {
			t.Errorf("BrowserRung's %q is never set by app.js", k)
		}
	}
}

// objectKeys returns the keys of a JavaScript object literal's body
// ("a: 1, b: f(x)").
func objectKeys(body string) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:^|,)\s*(\w+)\s*:`).FindAllStringSubmatch(body, -1) {
		out[m[1]] = true
	}
	return out
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func typeNames(vs []any) string {
	var out []string
	for _, v := range vs {
		out = append(out, reflect.TypeOf(v).Name())
	}
	return strings.Join(slices.Compact(out), " or ")
}
