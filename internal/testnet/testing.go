// Package testnet builds the fault scenarios of the project's tests in Linux
// network namespaces (client hosts, routers, a server, with MTUs, ICMP
// suppression, fragment drops, size limits, MSS clamping and loss applied by
// iproute2 and nftables) and runs real programs across them.
//
// Tests call New with a scenario, usually a preset (Preset("S2")), and get a
// Net whose hosts run commands (Run, Start), Go code (Do, Dialer, Listen) and
// captures (Capture); StartNginx puts a real nginx on the server. Everything
// is torn down by t.Cleanup and, should the test process die, by a reaper
// process it starts; namespaces left by a killed run are removed at the next
// start. See API.md for a tour.
package testnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// onCI reports whether the tests run under CI (CI=true), where a namespace
// test that cannot run must fail instead of skipping.
func onCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips the test with reason, or fails it under CI.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if onCI() {
		t.Fatalf("testnet: %s (CI=true: namespace tests must run, not skip)", reason)
	}
	t.Skipf("testnet: %s", reason)
}

// Require skips the test (fails it with CI=true) unless this process can
// build namespaces: root, with iproute2 and nftables installed. With
// -short it skips, also under CI: the race pass (make test) runs the unit
// tests with -short, the namespace tests run in the full pass.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("testnet: -short: namespace tests run in the full pass")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for network namespaces")
	}
	RequireTools(t, "ip", "nft")
}

// RequireTools skips the test (fails it with CI=true) unless every named
// program is on PATH.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			skipOrFail(t, name+" is not installed")
		}
	}
}

// New builds sc for the test and tears it down when the test ends.
func New(t testing.TB, sc Scenario) *Net {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Build(ctx, sc)
	if err != nil {
		t.Fatalf("testnet: build %s: %v", sc, err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("testnet: close %s: %v", n, err)
		}
	})
	return n
}

const binDirPrefix = "mtuscope-bin-"

// binDir is where this process builds the mtuscope binary; the reaper
// removes it when the process ends.
func binDir() string {
	return filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(os.Getpid()))
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Mtuscope returns the path of an mtuscope binary built from this checkout,
// once per test process; $MTUSCOPE_BIN, when set, names a prebuilt one.
func Mtuscope(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("MTUSCOPE_BIN"); p != "" {
			binPath, binErr = filepath.Abs(p)
			return
		}
		if binErr = processStart(); binErr != nil {
			return
		}
		if binErr = os.MkdirAll(binDir(), 0o755); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir(), "mtuscope")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/mtuscope/mtuscope/cmd/mtuscope").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatalf("testnet: mtuscope binary: %v", binErr)
	}
	return binPath
}
