package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mtuscope/mtuscope/internal/strictyaml"
	"github.com/mtuscope/mtuscope/server"
	"github.com/mtuscope/mtuscope/watch"
)

// The documentation these tests hold to the code: each command's page in
// docs/ has a flags table whose first cell names the flag; serve's and
// watch's have a "config key" column, and docs/serve.yaml and
// docs/watch.yaml list every key, each with the flag that sets it.

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docRow is one row of a flags table: its flags and its other cells.
type docRow struct {
	flags []string // without dashes
	cells []string
}

var flagInCell = regexp.MustCompile("`(--?[a-z0-9][a-z0-9-]*)")

// flagTable returns the rows of the table whose header starts "| flag |".
func flagTable(t *testing.T, doc, name string) (header []string, rows []docRow) {
	t.Helper()
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			if in {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case !in && cells[0] == "flag":
			in, header = true, cells
		case in && strings.HasPrefix(cells[0], "---"):
		case in:
			var r docRow
			for _, m := range flagInCell.FindAllStringSubmatch(cells[0], -1) {
				r.flags = append(r.flags, strings.TrimLeft(m[1], "-"))
			}
			r.cells = cells
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no flags table (a header row starting \"| flag |\")", name)
	}
	return header, rows
}

// commandFlags lists cmd's own flags (long names, and the shorthand),
// hidden ones included, help left out.
func commandFlags(cmd *cobra.Command) map[string]*pflag.Flag {
	out := map[string]*pflag.Flag{}
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			out[f.Name] = f
		}
	})
	return out
}

func findCmd(t *testing.T, root *cobra.Command, path ...string) *cobra.Command {
	t.Helper()
	c, rest, err := root.Find(path)
	if err != nil || len(rest) > 0 {
		t.Fatalf("no command %v", path)
	}
	return c
}

// TestDocsListEveryFlag: each command's page lists exactly the flags the
// command has, each with its shorthand.
func TestDocsListEveryFlag(t *testing.T) {
	root := newRootCmd(&globals{})
	for _, name := range []string{"probe", "serve", "watch", "analyze"} {
		doc := "docs/" + name + ".md"
		cmd := findCmd(t, root, name)
		have := commandFlags(cmd)
		_, rows := flagTable(t, readDoc(t, doc), doc)
		listed := map[string]bool{}
		for _, r := range rows {
			if len(r.flags) == 0 {
				t.Errorf("%s: a row names no flag: %v", doc, r.cells)
			}
			for _, f := range r.flags {
				if fl := have[f]; fl != nil {
					listed[f] = true
					if fl.Shorthand != "" && !contains(r.flags, fl.Shorthand) {
						t.Errorf("%s: --%s is listed without its shorthand -%s", doc, f, fl.Shorthand)
					}
					continue
				}
				if len(f) != 1 || cmd.Flags().ShorthandLookup(f) == nil {
					t.Errorf("%s lists --%s, which mtuscope %s does not have", doc, f, name)
				}
			}
		}
		for f := range have {
			if !listed[f] {
				t.Errorf("%s does not list mtuscope %s's flag --%s", doc, name, f)
			}
		}
	}

	// asn: the table's "commands" column names where each flag is.
	doc := "docs/asn.md"
	header, rows := flagTable(t, readDoc(t, doc), doc)
	if len(header) < 2 || header[1] != "commands" {
		t.Fatalf("%s: the flags table's second column is %v, want commands", doc, header)
	}
	asn := findCmd(t, root, "asn")
	documented := map[string]bool{} // "import --strict"
	for _, r := range rows {
		for _, c := range strings.Split(r.cells[1], ",") {
			c = strings.TrimSpace(c)
			sub := asn
			if c != "asn" {
				sub = findCmd(t, root, "asn", c)
			}
			for _, f := range r.flags {
				if sub.Flags().Lookup(f) == nil && sub.PersistentFlags().Lookup(f) == nil && sub.InheritedFlags().Lookup(f) == nil {
					t.Errorf("%s lists --%s for %s, which has no such flag", doc, f, c)
				}
				documented[c+" --"+f] = true
			}
		}
	}
	for _, sub := range append([]*cobra.Command{asn}, asn.Commands()...) {
		name := sub.Name()
		for f := range commandFlags(sub) {
			if !documented[name+" --"+f] {
				t.Errorf("%s does not list --%s for %s", doc, f, name)
			}
		}
	}

	// The README says what every command shares, and version's --json.
	readme := readDoc(t, "README.md")
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(readme, "`--"+f.Name+" ") && !strings.Contains(readme, "`--"+f.Name+"`") {
			t.Errorf("README.md does not mention the global flag --%s", f.Name)
		}
	})
	for f := range commandFlags(findCmd(t, root, "version")) {
		if !strings.Contains(readme, "`--"+f+"`") {
			t.Errorf("README.md does not mention version's --%s", f)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestDocsPairFlagsWithKeys: serve's and watch's flags tables name, for
// each flag, the config key the flag's setting sets ("-" for none), and
// every flag of the settings table is there.
func TestDocsPairFlagsWithKeys(t *testing.T) {
	check := func(doc string, keys map[string]string) {
		header, rows := flagTable(t, readDoc(t, doc), doc)
		if len(header) < 2 || header[1] != "config key" {
			t.Fatalf("%s: the flags table's second column is %v, want config key", doc, header)
		}
		seen := map[string]bool{}
		for _, r := range rows {
			key := strings.Trim(r.cells[1], "`")
			for _, f := range r.flags {
				if len(f) == 1 {
					continue // a shorthand
				}
				want, isSetting := keys[f]
				seen[f] = true
				switch {
				case !isSetting && key != "-":
					t.Errorf("%s: --%s is no setting, yet the table pairs it with %q", doc, f, key)
				case isSetting && key != want:
					t.Errorf("%s: --%s sets %s, the table says %q", doc, f, want, key)
				}
			}
		}
		for f := range keys {
			if !seen[f] {
				t.Errorf("%s does not list --%s", doc, f)
			}
		}
	}
	check("docs/serve.md", bindSettings(pflag.NewFlagSet("", pflag.ContinueOnError), server.Defaults(), serveSettings).keys())
	check("docs/watch.md", bindSettings(pflag.NewFlagSet("", pflag.ContinueOnError), watch.Defaults(), watchSettings).keys())
}

var (
	yamlLine    = regexp.MustCompile(`^(\s*)([a-z0-9_]+):([^#]*)(?:#\s*(.*))?$`)
	commentFlag = regexp.MustCompile(`^-{1,2}([a-z0-9][a-z0-9-]*):`)
)

// flagsByKey maps each config key a setting sets to the names its flag
// goes by (long and shorthand).
func flagsByKey[C any](defaults C, list []setting[C]) map[string][]string {
	keys := bindSettings(pflag.NewFlagSet("", pflag.ContinueOnError), defaults, list).keys()
	out := map[string][]string{}
	for _, s := range list {
		out[keys[s.flag]] = append([]string{s.flag}, strings.Fields(s.short)...)
	}
	return out
}

// TestDocsConfigFiles: docs/serve.yaml and docs/watch.yaml are config
// files holding the defaults with every key listed, and a key's comment
// starts with the flag that sets it ("--rung-port: ...", "-i: ..."), and
// only when one does.
func TestDocsConfigFiles(t *testing.T) {
	check := func(doc string, got, defaults any, flags map[string][]string) {
		if !reflect.DeepEqual(flatten(t, got), flatten(t, defaults)) {
			t.Errorf("%s does not hold the defaults:\n%+v\nwant\n%+v", doc, got, defaults)
		}
		listed := map[string]bool{}
		section := ""
		for _, line := range strings.Split(readDoc(t, doc), "\n") {
			m := yamlLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			key := m[2]
			if m[1] == "" {
				section = key
			} else {
				key = section + "." + key
			}
			listed[key] = true
			names, hasFlag := flags[key]
			named := commentFlag.FindStringSubmatch(m[4])
			switch {
			case hasFlag && (named == nil || !contains(names, named[1])):
				t.Errorf("%s: %s is set by --%s; its comment %q does not start with it", doc, key, names[0], m[4])
			case !hasFlag && named != nil:
				t.Errorf("%s: %s has no flag; its comment %q names one", doc, key, m[4])
			}
		}
		for _, k := range strictyaml.Keys(reflect.TypeOf(defaults)) {
			if !listed[k] {
				t.Errorf("%s does not list %s", doc, k)
			}
		}
	}
	sc, err := server.LoadConfig("../../docs/serve.yaml")
	if err != nil {
		t.Fatal(err)
	}
	check("docs/serve.yaml", sc, server.Defaults(), flagsByKey(server.Defaults(), serveSettings))
	wc, err := watch.LoadConfig("../../docs/watch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wc.Interface = "" // the file names an example interface; the default is none
	check("docs/watch.yaml", wc, watch.Defaults(), flagsByKey(watch.Defaults(), watchSettings))
}

var (
	commandStart = regexp.MustCompile(`(?:^|[\s/` + "`" + `])mtuscope ([^\n]*)`)
	commandEnd   = regexp.MustCompile("[`#|;()]|&&")
)

// TestDocsExamplesAreValid: every mtuscope command line in the README,
// docs/ (code blocks, inline code, prose) and the systemd units names
// flags its command has.
func TestDocsExamplesAreValid(t *testing.T) {
	root := newRootCmd(&globals{})
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	units, err := filepath.Glob("../../deploy/systemd/*.service")
	if err != nil || len(units) == 0 {
		t.Fatalf("no systemd units: %v", err)
	}
	files = append(append(files, units...), "../../README.md")
	checked := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "\\\n", " ") // continuation lines
		for _, m := range commandStart.FindAllStringSubmatch(text, -1) {
			line := m[1]
			if loc := commandEnd.FindStringIndex(line); loc != nil {
				line = line[:loc[0]]
			}
			var words, flags []string
			for _, w := range strings.Fields(line) {
				w = strings.Trim(w, "[]")
				switch {
				case strings.HasPrefix(w, "-") && len(w) > 1:
					flags = append(flags, strings.SplitN(w, "=", 2)[0])
				case len(flags) == 0:
					words = append(words, w)
				}
			}
			if len(words) == 0 {
				continue
			}
			if c, _, err := root.Find(words[:1]); err != nil || c == root {
				continue // prose: "mtuscope finds ..."
			}
			cmd, _, _ := root.Find(words)
			checked++
			for _, f := range flags {
				if !hasFlag(cmd, f) {
					t.Errorf("%s: %q: mtuscope %s has no flag %s", filepath.Base(file), strings.TrimSpace(m[0]), cmd.Name(), f)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d command lines found: the scan is broken", checked)
	}
}

func hasFlag(cmd *cobra.Command, f string) bool {
	sets := []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags(), cmd.InheritedFlags()}
	for _, fs := range sets {
		if strings.HasPrefix(f, "--") {
			if fs.Lookup(f[2:]) != nil {
				return true
			}
		} else if len(f) == 2 && fs.ShorthandLookup(f[1:]) != nil {
			return true
		}
	}
	return f == "--help" || f == "-h"
}
