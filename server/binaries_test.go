package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBinaries makes a directory as make cross leaves it, with files of
// the given contents, and SHA256SUMS (lines replaced by sums when given).
func writeBinaries(t *testing.T, files map[string]string, sums string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256([]byte(body))
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(s[:]), name)
	}
	if sums == "" {
		sums = b.String()
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLoadBinaries takes a make cross directory and refuses what is not
// one: a file whose sum differs, a name outside the pattern (a path), no
// SHA256SUMS.
func TestLoadBinaries(t *testing.T) {
	good := map[string]string{"mtuscope-windows-amd64.exe": "MZ win", "mtuscope-darwin-arm64": "mac", "mtuscope-linux-amd64": "elf"}
	bins, err := loadBinaries(writeBinaries(t, good, ""))
	if err != nil || len(bins) != 3 || bins[2].OS != "windows" || bins[2].Arch != "amd64" {
		t.Fatalf("good directory: %v %+v", err, bins)
	}
	zero := strings.Repeat("0", 64)
	for name, sums := range map[string]string{
		"wrong sum":  zero + "  mtuscope-linux-amd64\n",
		"a path":     zero + "  ../etc/passwd\n",
		"other file": zero + "  notes.txt\n",
		"empty":      "\n",
	} {
		if _, err := loadBinaries(writeBinaries(t, map[string]string{"mtuscope-linux-amd64": "elf"}, sums)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := loadBinaries(t.TempDir()); err == nil {
		t.Error("a directory without SHA256SUMS accepted")
	}
}

// TestServeBinaries serves the loaded files and their sums only, and a
// report gives the command for each system, aimed at the page listener.
func TestServeBinaries(t *testing.T) {
	dir := writeBinaries(t, map[string]string{"mtuscope-windows-amd64.exe": "MZ win", "mtuscope-darwin-arm64": "mac"}, "")
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("no"), 0o644)
	bins, err := loadBinaries(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{Binaries: dir}, binaries: bins, Addrs: map[string]string{"https": "[::]:8443"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dl/{name}", s.serveBinary)
	for path, want := range map[string]int{"/dl/mtuscope-windows-amd64.exe": 200, "/dl/SHA256SUMS": 200,
		"/dl/secret.txt": 404, "/dl/..%2fSHA256SUMS": 404, "/dl/mtuscope-linux-amd64": 404} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("%s: %d, want %d", path, rec.Code, want)
		}
	}
	cmds := s.probeCommands("check.example.net:8080")
	if len(cmds) != 2 {
		t.Fatalf("commands: %+v", cmds)
	}
	all := fmt.Sprint(cmds)
	for _, want := range []string{"curl.exe -fLo mtuscope.exe https://check.example.net:8443/dl/mtuscope-windows-amd64.exe",
		`.\mtuscope.exe probe https://check.example.net:8443/`, "./mtuscope probe https://check.example.net:8443/", "macOS"} {
		if !strings.Contains(all, want) {
			t.Errorf("commands %q lack %q", all, want)
		}
	}
	tmpl, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	v, err := tmpl.view(&Report{ID: newID(), Source: "page"}, "https://check.example.net:8443", cmds...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v.Text, `.\mtuscope.exe probe https://check.example.net:8443/`) {
		t.Errorf("the text report gives no command:\n%s", v.Text)
	}
}
