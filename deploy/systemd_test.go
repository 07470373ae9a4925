package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// maxExposure is the highest `systemd-analyze security` exposure score a
// shipped unit may have (0 is best, 10 worst; 2 or less reads "OK").
const maxExposure = 2.0

// unitCopy writes the unit with its binary path pointed at bin, since
// systemd-analyze verify wants the ExecStart binary to exist.
func unitCopy(t *testing.T, name, bin string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "ExecStart=/usr/local/bin/mtuscope ") {
		t.Fatalf("%s: ExecStart does not run /usr/local/bin/mtuscope", name)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/mtuscope", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func TestSystemdUnits(t *testing.T) {
	testnet.RequireTools(t, "systemd-analyze")
	bin := testnet.Mtuscope(t)
	for _, tc := range []struct {
		unit string
		caps string // the only capability the service keeps
	}{
		{"mtuscope-serve.service", "CAP_NET_BIND_SERVICE"},
		{"mtuscope-watch.service", "CAP_NET_RAW"},
	} {
		t.Run(tc.unit, func(t *testing.T) {
			path := unitCopy(t, tc.unit, bin)
			// verify prints warnings (unknown keys, bad values) but still
			// exits 0 for most of them: any output is a failure.
			out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
			}
			out, err = exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", path).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze security: %v\n%s", err, out)
			}
			m := exposureRE.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no exposure score in:\n%s", out)
			}
			score, _ := strconv.ParseFloat(string(m[1]), 64)
			t.Logf("%s: exposure %.1f", tc.unit, score)
			if score > maxExposure {
				t.Errorf("%s: exposure %.1f, want at most %.1f:\n%s", tc.unit, score, maxExposure, out)
			}
			b, _ := os.ReadFile(path)
			for _, want := range []string{"DynamicUser=yes", "StateDirectory=", "ProtectSystem=strict", "SystemCallFilter=@system-service",
				"NoNewPrivileges=yes", "CapabilityBoundingSet=" + tc.caps + "\n", "AmbientCapabilities=" + tc.caps + "\n"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("%s lacks %q", tc.unit, strings.TrimSpace(want))
				}
			}
		})
	}
}
