//go:build linux

package probe_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// wine64 returns Debian's wine64 loader, skipping the test without it
// (failing under CI=true, where .ci/run installs it).
func wine64(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"wine64", "/usr/lib/wine/wine64"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("wine64 is not installed (apt-get install wine64)")
	}
	t.Skip("wine64 is not installed (apt-get install wine64)")
	return ""
}

// winePrefix creates a wine prefix once for the test, in a temporary
// directory, with the bcryptprimitives.dll Go's runtime needs (see
// forwarderDLL), and returns the environment that selects it. Creating a
// prefix takes tens of seconds on a busy machine: it is bounded
// generously, never timed.
func winePrefix(t *testing.T, wine string) []string {
	t.Helper()
	env := []string{"WINEPREFIX=" + filepath.Join(t.TempDir(), "prefix"), "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml="}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wine, "wineboot", "--init")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wineboot: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		k := exec.Command(filepath.Join(filepath.Dir(wine), "wineserver64"), "-k")
		if _, err := os.Stat(k.Path); err != nil {
			k = exec.Command("wineserver", "-k")
		}
		k.Env = append(os.Environ(), env...)
		k.Run()
	})
	sys32 := filepath.Join(env[0][len("WINEPREFIX="):], "drive_c", "windows", "system32")
	dll := forwarderDLL("bcryptprimitives.dll", "ProcessPrng", "advapi32.SystemFunction036")
	if err := os.WriteFile(filepath.Join(sys32, "bcryptprimitives.dll"), dll, 0o644); err != nil {
		t.Fatal(err)
	}
	return env
}

// windowsBinary builds mtuscope for windows/amd64 ($MTUSCOPE_WINDOWS_BIN
// names one already built, as make cross leaves in bin/cross).
func windowsBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MTUSCOPE_WINDOWS_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	out := filepath.Join(t.TempDir(), "mtuscope.exe")
	cmd := exec.Command("go", "build", "-o", out, "github.com/mtuscope/mtuscope/cmd/mtuscope")
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for windows: %v\n%s", err, b)
	}
	return out
}

// TestWindowsBinaryUnderWine runs the windows/amd64 binary under wine64 in
// the client namespace against mtuscope serve's page URL, as the report's
// command for Windows says, in S1, S2 and S8. Wine turns its Winsock calls
// into the namespace's Linux sockets: this proves the Windows code path
// (no TCP_MAXSEG, no TCP_INFO, Windows' socket options), not Windows' TCP
// stack.
func TestWindowsBinaryUnderWine(t *testing.T) {
	testnet.Require(t)
	wine := wine64(t)
	exe := windowsBinary(t)
	env := winePrefix(t, wine)
	for _, name := range []string{"S1", "S2", "S8"} {
		t.Run(name, func(t *testing.T) {
			sc := testnet.Preset(name)
			n := testnet.New(t, sc)
			servetest.Start(t, n)
			target := "https://" + net.JoinHostPort(n.Server.V4.String(), strconv.Itoa(servetest.HTTPSPort)) + "/"
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			args := append(append([]string{}, env...), wine, exe, "probe", "--json", "--timeout", "90s", target)
			res := n.Client.Run(ctx, "env", args...)
			var doc probeDoc
			if err := json.Unmarshal(res.Stdout, &doc); err != nil {
				t.Fatalf("probe under wine: %v\n%s", err, res)
			}
			logTests(t, "windows", doc)
			w := sc.Want
			if doc.Verdict != w.Verdict || doc.Direction != w.Direction || doc.PathMTU != w.PathMTU {
				t.Errorf("windows binary: %s %s %d, want %s %s %d", doc.Verdict, doc.Direction, doc.PathMTU, w.Verdict, w.Direction, w.PathMTU)
			}
			if !portableRan(doc) {
				t.Error("the windows binary made no exact-size test")
			}
		})
	}
}
