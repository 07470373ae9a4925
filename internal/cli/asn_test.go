package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cliCSV = "1.1.1.0,1.1.1.255,13335,\"Cloudflare, Inc.\"\n8.8.8.0,8.8.8.255,15169,Google LLC\n" +
	"2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC\n"

func TestASNImportLookup(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", dir) // the default database location
	src := filepath.Join(dir, "asn-ipv4.csv")
	if err := os.WriteFile(src, []byte(cliCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "asn", "import", src)
	if code != ExitOK || !strings.Contains(out, "imported 2 IPv4 and 1 IPv6 ranges") || !strings.Contains(out, "CC BY 4.0") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "mtuscope", "asn.db")); err != nil {
		t.Fatalf("database not in the XDG data dir: %v", err)
	}
	code, out, _ = run(t, "asn", "lookup", "8.8.8.8", "::ffff:1.1.1.1", "192.0.2.1")
	lines := strings.Split(out, "\n")
	if code != ExitOK || len(lines) < 4 ||
		!strings.Contains(lines[0], "AS15169") || !strings.Contains(lines[0], "8.8.8.0/24") ||
		!strings.Contains(lines[1], "Cloudflare, Inc.") || !strings.HasPrefix(lines[1], "1.1.1.1 ") ||
		!strings.Contains(lines[2], "192.0.2.0/24") || !strings.Contains(lines[2], "no ASN") ||
		!strings.HasPrefix(lines[3], "# ") || !strings.Contains(lines[3], "db-ip.com") {
		t.Errorf("lookup: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "asn", "lookup", "--json", "2001:4860:4860::8888")
	var res lookupOutput
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != ExitOK {
		t.Fatalf("lookup --json: exit %d %v\n%s", code, err, out)
	}
	if len(res.Results) != 1 || res.Results[0].ASN != 15169 || res.Attribution == "" || res.Missing != "" {
		t.Errorf("lookup --json: %+v", res)
	}
	code, out, _ = run(t, "asn", "status")
	if code != ExitOK || !strings.Contains(out, "2 IPv4 and 1 IPv6 ranges") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

func TestASNErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("8.8.8.255,8.8.8.0,15169,reversed\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad address", []string{"asn", "lookup", "--db", db, "8.8.8"}, ExitUsage, `"8.8.8" is not an IP address`},
		{"no arguments", []string{"asn", "lookup", "--db", db}, ExitUsage, "requires at least 1 arg"},
		{"bad file", []string{"asn", "import", "--db", db, bad}, ExitUsage, "bad.csv:1: reversed range"},
		{"missing file", []string{"asn", "import", "--db", db, filepath.Join(dir, "nope.csv")}, ExitUsage, "no such file"},
		{"no database", []string{"asn", "lookup", "--db", db, "8.8.8.8"}, ExitProblem, "mtuscope asn update"},
		{"status without database", []string{"asn", "status", "--db", db}, ExitProblem, "/24 (IPv4) and /48 (IPv6)"},
		{"unreachable update", []string{"asn", "update", "--db", db, "--url", "http://127.0.0.1:1/x.csv"}, ExitProblem, "database was not changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (want %d), stderr %q does not mention %q; stdout %q", code, tc.code, errOut, tc.want, out)
			}
		})
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("a failed command created the database")
	}
}

func TestASNUpdate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte(cliCSV))
	}))
	defer srv.Close()
	db := filepath.Join(t.TempDir(), "asn.db")
	code, out, errOut := run(t, "asn", "update", "--db", db, "--url", srv.URL+"/asn.csv")
	if code != ExitOK || !strings.Contains(out, "downloaded") || !strings.Contains(out, "imported 2 IPv4") {
		t.Fatalf("update: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = run(t, "asn", "update", "--db", db, "--url", srv.URL+"/asn.csv")
	if code != ExitOK || !strings.Contains(out, "not modified") || !strings.Contains(out, "up to date") {
		t.Errorf("second update: exit %d\n%s", code, out)
	}
}

// TestASNOverlaps: overlapping rows are resolved by default and counted,
// listed by status (and at debug level); --strict fails on them;
// --allow-overlaps is still accepted and changes nothing.
func TestASNOverlaps(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	src := filepath.Join(dir, "asn-ipv4.csv")
	data := "214.95.0.0,215.0.255.255,749,DoD\n215.0.0.0,215.1.3.255,721,DoD NIC\n8.8.8.0,8.8.8.255,15169,Google LLC\n"
	if err := os.WriteFile(src, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "--log-level", "debug", "asn", "import", "--db", db, src)
	if code != ExitOK || !strings.Contains(out, "1 overlapping rows resolved") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "overlapping ranges, the narrower wins") || !strings.Contains(errOut, "asn-ipv4.csv:2") {
		t.Errorf("the overlap is not listed at debug level:\n%s", errOut)
	}
	code, out, _ = run(t, "asn", "lookup", "--db", db, "215.0.0.1", "214.255.0.1")
	if f := strings.Fields(out); code != ExitOK || len(f) < 12 || f[0] != "215.0.0.1" || f[1] != "AS721" || f[6] != "214.255.0.1" || f[7] != "AS749" {
		t.Errorf("lookup: the narrower range does not win: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "asn", "status", "--db", db)
	if code != ExitOK || !strings.Contains(out, "overlap: "+src+":1 (214.95.0.0-215.0.255.255 AS749) and "+src+":2 (215.0.0.0-215.1.3.255 AS721)") {
		t.Errorf("status does not list the overlap: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "asn", "status", "--json", "--db", db)
	if code != ExitOK || !strings.Contains(out, `"overlaps": 1`) || !strings.Contains(out, `"overlap_list"`) {
		t.Errorf("status --json: exit %d\n%s", code, out)
	}
	before, _ := os.ReadFile(db)
	code, _, errOut = run(t, "asn", "import", "--strict", "--db", db, src)
	if code != ExitUsage || !strings.Contains(errOut, "overlapping ranges: "+src+":1") {
		t.Errorf("--strict: exit %d, stderr %q", code, errOut)
	}
	if after, _ := os.ReadFile(db); string(after) != string(before) {
		t.Error("a failed --strict import changed the database")
	}
	code, out, errOut = run(t, "asn", "import", "--allow-overlaps", "--db", db, src)
	if code != ExitOK || !strings.Contains(out, "1 overlapping rows resolved") {
		t.Errorf("--allow-overlaps: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = run(t, "asn", "import", "--allow-overlaps", "--strict", "--db", db, src)
	if code != ExitUsage || !strings.Contains(errOut, "contradict") {
		t.Errorf("--allow-overlaps --strict: exit %d, stderr %q", code, errOut)
	}
}

// TestASNTerminalEscapes: organisation names and attribution from a dataset
// reach the terminal with their control characters escaped.
func TestASNTerminalEscapes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	src := filepath.Join(dir, "asn-ipv4.csv")
	data := "8.8.8.0,8.8.8.255,15169,\"Evil\x1b]0;pwned\x07\x1b[2J Corp\u202e\u009b\"\n"
	if err := os.WriteFile(src, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "asn", "import", "--db", db, "--attribution", "Data\x1b[31m by \rX", src)
	if code != ExitOK {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	_, look, _ := run(t, "asn", "lookup", "--db", db, "8.8.8.8")
	_, st, _ := run(t, "asn", "status", "--db", db)
	for name, text := range map[string]string{"import": out, "lookup": look, "status": st} {
		if strings.ContainsAny(text, "\x1b\x07\r\u202e\u009b") {
			t.Errorf("%s prints control characters raw: %q", name, text)
		}
		if !strings.Contains(text, `Data\x1b[31m by \x0dX`) {
			t.Errorf("%s: attribution not escaped as expected: %q", name, text)
		}
	}
	if !strings.Contains(look, `Evil\x1b]0;pwned\x07\x1b[2J Corp\u202e\u009b`) {
		t.Errorf("lookup: organisation not escaped as expected: %q", look)
	}
}

// TestASNKilledImportLeavesNoTemp: the temporary file a killed import left
// beside the database (however recent) is gone after the next import.
func TestASNKilledImportLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	src := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(src, []byte(cliCSV), 0o644)
	left := filepath.Join(dir, "asn.db.tmp-123456")
	if err := os.WriteFile(left, []byte("half a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "asn", "import", "--db", db, src); code != ExitOK {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "asn.db" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("data directory holds %q, want only asn.db", names)
	}
}
