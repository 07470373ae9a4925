package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// TestHandOutProbe follows the report's command as a network team would,
// in S2: serve hands out a binary from its binaries directory, the
// affected computer downloads it from the page listener (across the black
// hole), runs it in the portable mode against the page URL, stores the
// result, and the report names the command for each system.
func TestHandOutProbe(t *testing.T) {
	testnet.Require(t)
	bin := testnet.Mtuscope(t)
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum := sha256.Sum256(body)
	sums := fmt.Sprintf("%s  mtuscope-linux-amd64\n%s  mtuscope-windows-amd64.exe\n", hex.EncodeToString(sum[:]), hex.EncodeToString(sum[:]))
	for _, name := range []string{"mtuscope-linux-amd64", "mtuscope-windows-amd64.exe"} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(sums), 0o644)
	conf := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(conf, []byte("binaries: "+dir+"\n"), 0o644)

	n := testnet.New(t, testnet.Preset("S2"))
	srv := servetest.Start(t, n, "--config", conf)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	got := filepath.Join(t.TempDir(), "mtuscope")
	if res := n.Client.Run(ctx, "curl", "-sSfkLo", got, srv.URL(4, "/dl/mtuscope-linux-amd64")); res.ExitCode != 0 {
		t.Fatalf("download across S2's black hole: %s", res)
	}
	b, _ := os.ReadFile(got)
	if s := sha256.Sum256(b); s != sum {
		t.Fatalf("downloaded %d bytes, not the binary (%d)", len(b), len(body))
	}
	os.Chmod(got, 0o755)
	res := n.Client.Run(ctx, got, "probe", "--portable", "--json", "--timeout", "60s", "--submit", srv.HTTPURL(4, ""), srv.URL(4, "/"))
	m := regexp.MustCompile(`report stored: (\S+)`).FindStringSubmatch(string(res.Stderr))
	if m == nil || !strings.Contains(string(res.Stdout), `"verdict": "pmtud_blackhole"`) {
		t.Fatalf("the downloaded probe: exit %d\n%s\n%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	rep := n.Client.Run(ctx, "curl", "-sSf", m[1]+".txt")
	want := `.\mtuscope.exe probe https://` + n.Server.V4.String() + ":8443/"
	if !strings.Contains(string(rep.Stdout), want) || !strings.Contains(string(rep.Stdout), "/dl/mtuscope-linux-amd64") {
		t.Errorf("the report gives no command %q:\n%s", want, rep.Stdout)
	}
}
