package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigErrorsNameKeyAndLine: a mistyped key or a bad value names the
// key's path and its line, not a Go type (it said "field buckets not found
// in type monitor.Config").
func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ in, want string }{
		{"interfce: eth0\n", `line 1: interfce: unknown key (did you mean "interface"?)`},
		{"ports: [443]\nmonitor:\n  bucket: 1m\n  buckets: 1m\n", `line 4: monitor.buckets: unknown key (did you mean "bucket"?)`},
		{"ports: four\n", `line 1: ports: want a list`},
		{"monitor:\n  alpha: small\n", `line 2: monitor.alpha: want a number, got "small"`},
	} {
		p := filepath.Join(dir, "w.yaml")
		if err := os.WriteFile(p, []byte(tc.in), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "monitor.Config") || strings.Contains(err.Error(), "watch.Config") {
			t.Errorf("%q: error %v, want one containing %q and no Go type", tc.in, err, tc.want)
		}
	}
}
