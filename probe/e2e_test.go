//go:build linux

package probe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// probeDoc is the part of `mtuscope probe --json` the end-to-end tests read.
type probeDoc struct {
	Target    string   `json:"target"`
	Address   string   `json:"address"`
	Family    int      `json:"family"`
	Verdict   string   `json:"verdict"`
	Causes    []string `json:"causes"`
	PathMTU   int      `json:"path_mtu"`
	Direction string   `json:"direction"`
	Findings  []struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"findings"`
	Fixes []struct {
		Code     string   `json:"code"`
		Commands []string `json:"commands"`
	} `json:"fixes"`
	Tests     []json.RawMessage `json:"tests"`
	RTTMS     float64           `json:"rtt_ms"`
	TimeoutMS int64             `json:"handshake_timeout_ms"`
	Skipped   []string          `json:"skipped"`
	ElapsedMS int64             `json:"elapsed_ms"`
}

func (d probeDoc) hasFinding(code string) bool {
	for _, f := range d.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

// probeIn runs the real binary in the net's client namespace against the
// server's address of the family and returns its JSON document, exit code
// and wall time.
func probeIn(t testing.TB, n *testnet.Net, family int, extra ...string) (probeDoc, int, time.Duration) {
	t.Helper()
	// Each run sends up to 40 handshakes at once to an RSA-4096 nginx: a
	// dozen together would only measure how busy two cores can get.
	testnet.Heavy(t, 1)
	bin := testnet.Mtuscope(t)
	ng := n.Server.Addr(family)
	args := append([]string{"probe", "--json", "--sni", testnet.ServerName}, extra...)
	if family == 6 {
		args = append(args, "-6", "["+ng.String()+"]:443")
	} else {
		args = append(args, "-4", ng.String()+":443")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := n.Client.Run(ctx, bin, args...)
	var doc probeDoc
	if err := json.Unmarshal(res.Stdout, &doc); err != nil {
		t.Fatalf("probe output is not JSON: %v\n%s", err, res)
	}
	if res.Duration > 4*time.Second {
		// Say where the time went.
		for _, raw := range doc.Tests {
			var tt struct {
				DurationMS float64 `json:"duration_ms"`
			}
			if json.Unmarshal(raw, &tt) == nil && tt.DurationMS > 1000 {
				var b bytes.Buffer
				json.Compact(&b, raw)
				t.Logf("slow test: %s", b.String())
			}
		}
	}
	return doc, res.ExitCode, res.Duration
}

// wantFor returns what the probe must conclude about sc. One deliberate
// difference from docs/testbed.md: in S5 the probe proves that fragments are
// lost upstream (a fragmented UDP datagram to a closed port gets no port
// unreachable, whose answer is small) but cannot test downstream fragments
// when the upstream ones die: a plain server sends none, and mtuscope
// serve's echo never answers with more than it received. It says
// "upstream", what it can show, rather than guess "both". (Downstream-only
// fragment loss is shown against mtuscope serve in package server.)
func wantFor(sc testnet.Scenario) testnet.Want {
	w := sc.Want
	if sc.Name == "S5" {
		w.Direction = "upstream"
	}
	return w
}

// TestProbeScenarios runs the real binary in every scenario and family that
// issue 3 names, each against Debian's nginx, and checks verdict, direction
// and the exact path MTU.
func TestProbeScenarios(t *testing.T) {
	testnet.Require(t)
	for _, tc := range []struct {
		scenario string
		family   int
	}{
		{"S1", 4}, {"S2", 4}, {"S3", 4}, {"S4", 4}, {"S5", 4}, {"S6", 4}, {"S7", 4}, {"S8", 4}, {"S9", 4},
		{"S1", 6}, {"S3", 6}, {"S6", 6},
	} {
		t.Run(fmt.Sprintf("%s/v%d", tc.scenario, tc.family), func(t *testing.T) {
			t.Parallel()
			sc := testnet.Preset(tc.scenario)
			n := testnet.New(t, sc)
			n.StartNginx(t)
			doc, code, took := probeIn(t, n, tc.family)
			t.Logf("%s v%d: %s %d %s in %v (exit %d; rtt %.2f ms, handshake timeout %d ms)", tc.scenario, tc.family,
				doc.Verdict, doc.PathMTU, doc.Direction, took, code, doc.RTTMS, doc.TimeoutMS)
			for _, f := range doc.Findings {
				t.Logf("  %s: %s", f.Code, f.Detail)
			}
			want := wantFor(sc)
			if doc.Verdict != want.Verdict || doc.PathMTU != want.PathMTU || doc.Direction != want.Direction {
				for _, raw := range doc.Tests {
					var b bytes.Buffer
					json.Compact(&b, raw)
					if !strings.Contains(b.String(), `"outcome":"completed"`) {
						t.Logf("test: %s", b.String())
					}
				}
				t.Errorf("got %s / %d / %s, want %s / %d / %s", doc.Verdict, doc.PathMTU, doc.Direction,
					want.Verdict, want.PathMTU, want.Direction)
			}
			wantCode := 0
			if want.Verdict != "ok" && want.Verdict != "pmtu_reduced" {
				wantCode = 1
			}
			if code != wantCode {
				t.Errorf("exit %d, want %d", code, wantCode)
			}
			if doc.Family != tc.family {
				t.Errorf("family %d, want %d", doc.Family, tc.family)
			}
			// Scenario-specific findings the issue asks for.
			switch tc.scenario {
			case "S4":
				if !doc.hasFinding("mss_clamped") || !doc.hasFinding("large_datagrams_blackholed") {
					t.Errorf("S4 wants findings mss_clamped and large_datagrams_blackholed")
				}
			case "S2", "S6":
				if !doc.hasFix("clamp_mss", fmt.Sprint(want.PathMTU-map[int]int{4: 40, 6: 60}[tc.family])) {
					t.Errorf("no MSS clamp fix with the computed MSS: %+v", doc.Fixes)
				}
			case "S3":
				if !doc.hasFinding("pmtud_works") {
					t.Errorf("S3 wants finding pmtud_works")
				}
			}
		})
	}
}

func (d probeDoc) hasFix(code, arg string) bool {
	for _, f := range d.Fixes {
		if f.Code == code {
			for _, c := range f.Commands {
				if strings.HasSuffix(c, " "+arg) {
					return true
				}
			}
		}
	}
	return false
}

// TestProbeLossyNoFalseAlarm: in S9 (1% random loss) twenty consecutive
// runs must all say ok, with the ICMP echo tests in every other run.
func TestProbeLossyNoFalseAlarm(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S9"))
	n.StartNginx(t)
	var took []time.Duration
	for i := 0; i < 20; i++ {
		var extra []string
		if i%2 == 1 {
			extra = append(extra, "--no-icmp")
		}
		doc, code, d := probeIn(t, n, 4, extra...)
		took = append(took, d)
		if doc.Verdict != "ok" || doc.PathMTU != 1500 || code != 0 {
			t.Errorf("run %d: %s %d %s (exit %d): %+v", i+1, doc.Verdict, doc.PathMTU, doc.Direction, code, doc.Findings)
		}
	}
	t.Logf("20 runs: %s", durations(took))
}

// TestProbeFragmentEchoLostOnce: on a clean path whose router drops the
// fragmented ICMP echoes of the first pair only (as random loss or a busy
// moment would), probe must not say fragments are dropped: the pair is sent
// again, beside a small echo, and that one is answered.
func TestProbeFragmentEchoLostOnce(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	// Each 2000-byte echo request leaves a 520-byte tail fragment: the
	// quota drops the first two tails going upstream and no more.
	n, doc := probeCleanPathThrough(t, "add table inet lossonce; add chain inet lossonce hold { type filter hook forward priority 0; }; "+
		"add rule inet lossonce hold iifname lan ip protocol icmp ip frag-off & 0x1fff != 0 quota until 1100 bytes counter drop")
	// The first pair is in the report, marked retried, and the second
	// pair came back.
	var retried, replied int
	for _, raw := range doc.Tests {
		var tt struct {
			Name    string         `json:"name"`
			Params  map[string]any `json:"params"`
			Outcome string         `json:"outcome"`
			Result  map[string]any `json:"result"`
		}
		if json.Unmarshal(raw, &tt) != nil || tt.Name != "icmp_echo" || tt.Params["size"] != 2000.0 {
			continue
		}
		if tt.Result["retried"] == true && tt.Outcome == "none" {
			retried++
		}
		if tt.Outcome == "echo_reply" && tt.Result["retried"] == nil {
			replied++
		}
	}
	if retried != 1 || replied != 1 {
		t.Errorf("fragmented echoes: %d retried (want 1), %d answered (want 1)", retried, replied)
	}
	// A fresh context: probeIn may have waited long for a slot.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res := n.R1[0].Run(ctx, "nft", "list", "table", "inet", "lossonce"); !strings.Contains(string(res.Stdout), "packets 2 ") {
		t.Errorf("the rule did not drop exactly the first pair's two tails:\n%s", res)
	}
}

// TestProbeEchoFiltered: where a firewall drops every echo request (many
// do), the fragmented echo's silence proves nothing about fragments: its
// small control is lost too. The test is left out, with a line saying why.
func TestProbeEchoFiltered(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	_, doc := probeCleanPathThrough(t, "add table inet noping; add chain inet noping hold { type filter hook forward priority 0; }; "+
		"add rule inet noping hold icmp type echo-request drop")
	skipped := false
	for _, f := range doc.Findings {
		skipped = skipped || f.Code == "tests_skipped" && strings.Contains(f.Detail, "fragmented ICMP echo test")
	}
	if !skipped {
		t.Errorf("no tests_skipped finding for the fragmented echo: %+v", doc.Findings)
	}
}

// probeCleanPathThrough probes a clean path (S1) whose client-side router
// also runs the nft script, over IPv4, and fails the test unless the
// verdict is ok (exit 0) without fragments_dropped: the rule must not make
// probe blame fragments.
func probeCleanPathThrough(t *testing.T, nft string) (*testnet.Net, probeDoc) {
	t.Helper()
	n := testnet.New(t, testnet.Preset("S1"))
	n.StartNginx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res := n.R1[0].Run(ctx, "nft", nft); res.Err != nil {
		t.Fatalf("nft: %s", res)
	}
	doc, code, _ := probeIn(t, n, 4)
	if doc.Verdict != "ok" || code != 0 || doc.hasFinding("fragments_dropped") {
		t.Errorf("%s %d (exit %d): %+v", doc.Verdict, doc.PathMTU, code, doc.Findings)
	}
	return n, doc
}

// TestProbePMTUDWorksRepeated: in S3 (a 1400-byte link, ICMP allowed)
// twenty consecutive runs, alternating IPv4 and IPv6, must all say
// pmtu_reduced at exactly 1400 with nothing to blame: the speculative
// rounds and the quick UDP proof must not invent a black hole where PMTUD
// works.
func TestProbePMTUDWorksRepeated(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S3"))
	n.StartNginx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var took []time.Duration
	for i := 0; i < 20; i++ {
		fam := 4 + 2*(i%2)
		n.FlushPMTU(ctx)
		doc, code, d := probeIn(t, n, fam)
		took = append(took, d)
		if doc.Verdict != "pmtu_reduced" || doc.PathMTU != 1400 || doc.Direction != "none" || code != 0 {
			t.Errorf("run %d (IPv%d): %s %d %s (exit %d): %+v", i+1, fam, doc.Verdict, doc.PathMTU, doc.Direction, code, doc.Findings)
		}
	}
	t.Logf("20 runs: %s", durations(took))
}

// durations summarises run times: median, min and max.
func durations(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	return fmt.Sprintf("median %.2f s, min %.2f s, max %.2f s", s[len(s)/2].Seconds(), s[0].Seconds(), s[len(s)-1].Seconds())
}

// TestProbeUnprivileged runs the probe as nobody in S2: TCP, TLS and UDP
// tests run and conclude; the ICMP tests are skipped with a message.
func TestProbeUnprivileged(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "setpriv")
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S2"))
	n.StartNginx(t)
	bin := testnet.Mtuscope(t)
	testnet.Heavy(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := n.Client.Run(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
		"probe", "--json", "--sni", testnet.ServerName, n.Server.Addr(4).String())
	var doc probeDoc
	if err := json.Unmarshal(res.Stdout, &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, res)
	}
	if doc.Verdict != "pmtud_blackhole" || doc.PathMTU != 1400 || doc.Direction != "both" {
		// The whole run, so that a wrong figure can be traced to its tests.
		t.Errorf("as nobody: %s %d %s\n%s", doc.Verdict, doc.PathMTU, doc.Direction, res)
	}
	if len(doc.Skipped) != 1 || !strings.Contains(doc.Skipped[0], "ICMP echo") || !strings.Contains(doc.Skipped[0], "root") {
		t.Errorf("skipped: %q", doc.Skipped)
	}
	udp := 0
	for _, raw := range doc.Tests {
		var tt struct{ Name string }
		json.Unmarshal(raw, &tt)
		if tt.Name == "udp" {
			udp++
		}
		if tt.Name == "icmp_echo" {
			t.Errorf("an ICMP test ran without privilege: %s", raw)
		}
	}
	if udp < 3 || !doc.hasFinding("fragments_dropped") {
		t.Errorf("UDP tests: %d, findings %+v", udp, doc.Findings)
	}
}

// TestProbeBadTargets: in the testbed, a name that does not resolve, a
// closed port and a port speaking plain HTTP (nginx on 80) each get a clear
// answer, within --timeout.
func TestProbeBadTargets(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S1"))
	n.StartNginx(t)
	bin := testnet.Mtuscope(t)
	srv := n.Server.Addr(4).String()
	for _, tc := range []struct {
		name     string
		target   string
		code     int
		verdict  string
		inStderr string
	}{
		{"unresolvable", "no-such-host.invalid", 2, "", "cannot resolve"},
		{"closed port", srv + ":8443", 1, "tcp_unreachable", ""},
		{"plain http", srv + ":80", 1, "tls_failed", ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res := n.Client.Run(ctx, bin, "probe", "--json", "--timeout", "8s", tc.target)
		cancel()
		var doc probeDoc
		json.Unmarshal(res.Stdout, &doc)
		if res.ExitCode != tc.code || doc.Verdict != tc.verdict || !strings.Contains(string(res.Stderr), tc.inStderr) {
			t.Errorf("%s: %s", tc.name, res)
		}
		if res.Duration > 10*time.Second {
			t.Errorf("%s: took %v with --timeout 8s", tc.name, res.Duration)
		}
	}
}

// TestProbeTimeoutBound: --timeout bounds the whole run even in the black
// hole, and a cut-short run says inconclusive rather than a wrong size.
func TestProbeTimeoutBound(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S2"))
	n.StartNginx(t)
	// 600 ms is less than one handshake timeout: the ladders cannot finish
	// (a whole S2 run fits in about 1.2 s). The run must say so, not guess.
	// How long the process took is no test here (a busy machine starts it
	// late); that it stopped its tests at the deadline is: the report says
	// it hit the timeout, and it did not run a whole search (over 20 s a
	// loaded machine would need for S2). On a machine busy enough that
	// the server's answers came late too, the finding says that
	// (too_slow) beside the timeout.
	doc, code, took := probeIn(t, n, 4, "--timeout", "600ms")
	cut := doc.hasFinding("inconclusive") || doc.hasFinding("too_slow") && doc.hasFinding("tests_skipped")
	if code != 3 || doc.Verdict != "inconclusive" || !cut || took > 20*time.Second {
		t.Errorf("--timeout 600ms: %s %d (exit %d) after %v, findings %+v", doc.Verdict, doc.PathMTU, code, took, doc.Findings)
	}
}

// TestProbeLearnedPMTU: when the kernel already learned the path MTU from
// ICMP before the run (an earlier connection, another program), the local
// MTU is still the interface's, and the path is still pmtu_reduced, not ok.
func TestProbeLearnedPMTU(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S3"))
	n.StartNginx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Client.Run(ctx, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1472", n.Server.V4.String())
	if r := n.Client.Run(ctx, "ip", "route", "get", n.Server.V4.String()); !strings.Contains(string(r.Stdout), "mtu 1400") {
		t.Fatalf("the client did not learn the path MTU first: %s", r)
	}
	doc, code, _ := probeIn(t, n, 4)
	if doc.Verdict != "pmtu_reduced" || doc.PathMTU != 1400 || doc.Direction != "none" || code != 0 || !doc.hasFinding("pmtud_works") {
		t.Errorf("%s %d %s (exit %d), findings %+v: want pmtu_reduced 1400 none with pmtud_works", doc.Verdict, doc.PathMTU, doc.Direction, code, doc.Findings)
	}
}
