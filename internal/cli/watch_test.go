package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

func TestWatchUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "watch.yml")
	if err := os.WriteFile(cfg, []byte("interface: eth0\nports: [443]\nmonitor:\n  top_n: 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("interface: eth0\nalert_manager: http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "watch", "--config", cfg, "--check-config")
	if code != ExitOK || !strings.Contains(out, "configuration OK") || !strings.Contains(out, "top 20") {
		t.Fatalf("check-config: exit %d, %q %q", code, out, errOut)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown key", []string{"watch", "--config", bad, "--check-config"}, "alert_manager"},
		{"no source", []string{"watch"}, "-i IFACE or --read FILE"},
		{"both sources", []string{"watch", "-i", "lo", "--read", "x.pcap"}, "exclude each other"},
		{"json live", []string{"watch", "-i", "lo", "--json"}, "--json goes with --read"},
		{"bad port", []string{"watch", "--read", "x.pcap", "--port", "0"}, "ports: 0"},
		{"bad url", []string{"watch", "--read", "x.pcap", "--alertmanager", "am:9093"}, "alertmanager"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(t, tc.args...)
			if code != ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q, want %d and %q", code, errOut, ExitUsage, tc.want)
			}
		})
	}
}

// Without CAP_NET_RAW live capture stops at once with a message that
// names the capability (run as an unprivileged user via setpriv).
func TestWatchNeedsCapNetRaw(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop to an unprivileged user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv")
	}
	bin := testnet.Mtuscope(t)
	dir, err := os.MkdirTemp("", "mtuscope-watch-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777) // the unprivileged user's data directory
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
		bin, "watch", "-i", "lo", "--admin", "", "--data-dir", dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitUsage || !strings.Contains(string(out), "CAP_NET_RAW") {
		t.Fatalf("%v: %s", err, out)
	}
}
