//go:build linux

package probe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// probeServe runs the real binary in the client namespace against mtuscope
// serve at port (the page listener, clamped: what the report's command
// names; or the unclamped probe target) with extra flags.
func probeServe(t *testing.T, n *testnet.Net, family, port int, extra ...string) probeDoc {
	t.Helper()
	testnet.Heavy(t, 1)
	args := append([]string{"probe", "--json", "--timeout", "60s"}, extra...)
	args = append(args, fmt.Sprintf("-%d", family), net.JoinHostPort(n.Server.Addr(family).String(), strconv.Itoa(port)))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res := n.Client.Run(ctx, testnet.Mtuscope(t), args...)
	var doc probeDoc
	if err := json.Unmarshal(res.Stdout, &doc); err != nil {
		t.Fatalf("probe %v: output is not JSON: %v\n%s", extra, err, res)
	}
	return doc
}

// logTests logs the tests of a document that did not pass.
func logTests(t *testing.T, name string, d probeDoc) {
	t.Helper()
	t.Logf("%s: %s %s %d in %d ms, %d tests, skipped %q", name, d.Verdict, d.Direction, d.PathMTU, d.ElapsedMS, len(d.Tests), d.Skipped)
	for _, f := range d.Findings {
		t.Logf("  %s: %s", f.Code, f.Detail)
	}
	for _, raw := range d.Tests {
		var b bytes.Buffer
		json.Compact(&b, raw)
		if !strings.Contains(b.String(), `"outcome":"completed"`) {
			t.Logf("  test: %s", b.String())
		}
	}
}

// TestPortableMatchesLinux runs, in S1-S9 against mtuscope serve, the
// Linux mode (TCP_MAXSEG ladders, on the probe target) and the portable
// mode (--portable: no Linux socket option, exact-size segments from the
// server, started from the page's URL as on Windows and macOS), and wants
// the scenario's verdict, direction and path MTU from the portable mode
// (the Linux mode's, whenever that one is right).
func TestPortableMatchesLinux(t *testing.T) {
	testnet.Require(t)
	for _, name := range []string{"S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc := testnet.Preset(name)
			n := testnet.New(t, sc)
			servetest.Start(t, n)
			linux := probeServe(t, n, 4, servetest.TargetPort)
			n.FlushPMTU(context.Background())
			portable := probeServe(t, n, 4, servetest.HTTPSPort, "--portable")
			logTests(t, "linux", linux)
			logTests(t, "portable", portable)
			want := sc.Want
			if name == "S5" {
				want.Direction = "upstream" // see wantFor
			}
			if portable.Verdict != want.Verdict || portable.Direction != want.Direction || portable.PathMTU != want.PathMTU {
				t.Errorf("portable %s %s %d, want %s %s %d (linux %s %s %d)", portable.Verdict, portable.Direction, portable.PathMTU,
					want.Verdict, want.Direction, want.PathMTU, linux.Verdict, linux.Direction, linux.PathMTU)
			}
			if linux.Verdict != want.Verdict || linux.Direction != want.Direction || linux.PathMTU != want.PathMTU {
				// The Linux mode is TestProbeScenarios' subject; seen once
				// here under load: S6 over IPv4 at 1276 instead of 1280.
				t.Logf("the Linux mode missed: %s %s %d, want %s %s %d", linux.Verdict, linux.Direction, linux.PathMTU,
					want.Verdict, want.Direction, want.PathMTU)
			}
			if !portableRan(portable) {
				t.Errorf("the portable run made no exact-size test")
			}
		})
	}
}

// portableRan reports whether the document holds exact-size tests.
func portableRan(d probeDoc) bool {
	for _, raw := range d.Tests {
		if bytes.Contains(raw, []byte(`"exact_`)) {
			return true
		}
	}
	return false
}

// TestPortableAgainstNginx runs --portable against Debian's nginx, which
// writes no segment of a size asked for: the run must say that it could
// test neither direction and what would (the operator's mtuscope server,
// or the page), and give no verdict about a direction; clean or black hole.
func TestPortableAgainstNginx(t *testing.T) {
	testnet.Require(t)
	for _, name := range []string{"S1", "S2"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := testnet.New(t, testnet.Preset(name))
			n.StartNginx(t)
			doc, _, _ := probeIn(t, n, 4, "--portable")
			logTests(t, "portable", doc)
			if doc.Verdict != "inconclusive" || doc.Direction != "unknown" || doc.PathMTU != 0 {
				t.Errorf("%s %s %d against nginx, want inconclusive unknown 0: no direction was tested", doc.Verdict, doc.Direction, doc.PathMTU)
			}
			said := false
			for _, s := range doc.Skipped {
				said = said || strings.Contains(s, "upstream and downstream size tests") && strings.Contains(s, "mtuscope server")
			}
			if !said {
				t.Errorf("skipped %q: no word that both directions went untested and what would test them", doc.Skipped)
			}
			if portableRan(doc) {
				t.Errorf("exact-size tests against nginx")
			}
		})
	}
}
