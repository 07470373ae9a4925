package capture

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// maxRSS is the peak resident memory analyze and watch --read may reach
// on any crafted file.
const maxRSS = 300 << 20

// TestCraftedFilesRSS runs `mtuscope analyze` and `mtuscope watch --read`
// on each crafted file and reads the child's peak resident memory from
// its rusage: under 300 MB on every one, whatever the file claims. The
// figures are logged (go test -v) for the claim in docs/analyze.md.
func TestCraftedFilesRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary on several gigabytes of holes")
	}
	bin := testnet.Mtuscope(t)
	dir := t.TempDir()
	asnDB := filepath.Join(dir, "asn.db") // absent: watch groups by prefix
	for _, c := range craftedFiles() {
		t.Run(c.name, func(t *testing.T) {
			path := craftedPath(t, dir, c)
			for _, args := range [][]string{
				{"analyze", path},
				{"watch", "--read", path, "--admin", "", "--asn-db", asnDB},
			} {
				rss, code, stderr := runRSS(t, bin, args...)
				t.Logf("%s: peak RSS %d MB, exit %d: %s", args[0], rss>>20, code, firstLine(stderr))
				if code < 0 || code > 3 { // 3: inconclusive
					t.Errorf("%s: exit %d (killed?): %s", args[0], code, stderr)
				}
				if rss > maxRSS {
					t.Errorf("%s: peak RSS %d MB, want under %d MB", args[0], rss>>20, maxRSS>>20)
				}
			}
		})
	}
}

// runRSS runs the binary and returns its peak resident memory in bytes,
// its exit status and its stderr. The deadline only keeps a runaway child
// from holding the suite; it is no measurement.
func runRSS(t *testing.T, bin string, args ...string) (rss int64, code int, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var errb strings.Builder
	cmd.Stderr = &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("%v: %v", args, err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no rusage on this system")
	}
	return ru.Maxrss << 10, cmd.ProcessState.ExitCode(), errb.String() // Maxrss is in KiB on Linux
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "mtuscope:") {
			return l
		}
	}
	s, _, _ = strings.Cut(s, "\n")
	return s
}
