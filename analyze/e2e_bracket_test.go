package analyze_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/analyze"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/findingtest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// TestAnalyzeWideBracket is the held-out pair of issue 15 rebuilt: a
// downstream-only 1400-byte limit, a NAT between the captures, and the
// server's segmentation offload left on (no gso_max_segs 1: the router
// drops the server's super-segments whole, the tail-loss probe resends
// the flight's tail alone). The captures then only bracket the path MTU
// (the tail got through, nothing between it and 1500 bytes was sent): the
// conclusion must say so, give the range, and fix nothing with its floor.
func TestAnalyzeWideBracket(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "tcpdump", "curl", "nginx")
	bin := testnet.Mtuscope(t)
	n := testnet.New(t, testnet.Preset("S8"))
	ng := n.StartNginx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Masquerade(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Real TSO on the server: undo the testbed's convenience.
	if res := n.Server.Run(ctx, "ip", "link", "set", "dev", "n0", "gso_max_segs", "65535"); res.ExitCode != 0 {
		t.Fatalf("gso_max_segs: %s", res.Stderr)
	}
	cpath, spath := captureBoth(t, n, "analyze-tso", func() {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				res := n.Client.Run(ctx, "curl", ng.Curl(4, "/small.txt", 3*time.Second)...)
				t.Logf("curl: exit %d %s %s", res.ExitCode, res.Stdout, strings.TrimSpace(string(res.Stderr)))
			})
		}
		wg.Wait()
	})
	for _, args := range [][]string{{"--client", cpath, "--server", spath}, {cpath}, {spath}} {
		r := runAnalyze(t, bin, "", args...)
		t.Logf("%v: %s %s mtu %d %+v up %+v down %+v outcomes %v", args, r.Verdict, r.Direction, r.PathMTU, r.PathMTURange, r.Upstream, r.Downstream, r.Outcomes)
		for _, f := range r.Findings {
			t.Logf("  finding %s: %s", f.Code, f.Detail)
		}
		for _, f := range r.Fixes {
			t.Logf("  fix %s: %s %v", f.Code, f.Title, f.Commands)
		}
		checkWideBracket(t, bin, strings.Join(args, " "), r, args)
	}
}

// checkWideBracket asserts what a wide bracket must give: the range with
// its reason, no path MTU in the JSON, fixes that name no size, sentences
// that cite their figures.
func checkWideBracket(t *testing.T, bin, what string, r *analyze.Result, args []string) {
	t.Helper()
	b := r.PathMTURange
	if r.Verdict != diagnose.VerdictBlackhole || r.Direction != diagnose.Downstream {
		t.Errorf("%s: %s %s, want pmtud_blackhole downstream", what, r.Verdict, r.Direction)
	}
	if r.PathMTU != 0 || b.Delivered == 0 || b.Delivered > 1400 || b.Lost <= 1400 || b.Lost-b.Delivered <= 100 {
		t.Fatalf("%s: path MTU %d, bracket %+v: want no path MTU and a bracket wider than 100 bytes around 1400", what, r.PathMTU, b)
	}
	reason := fmt.Sprintf("between %d and %d bytes", b.Delivered+1, b.Lost-1)
	found := false
	for _, f := range r.Findings {
		for _, p := range findingtest.Problems(f) {
			t.Errorf("%s: %s", what, p)
		}
		if f.Code == diagnose.CodeBracket && strings.Contains(f.Detail, reason) {
			found = true
		}
		if strings.Contains(f.Detail, fmt.Sprintf("larger than %d bytes", b.Delivered)) {
			t.Errorf("%s: %q says every packet above the bracket's floor vanishes", what, f.Detail)
		}
	}
	if !found {
		t.Errorf("%s: no %s finding naming %q: %+v", what, diagnose.CodeBracket, reason, r.Findings)
	}
	for _, f := range r.Fixes {
		all := f.Title + " " + strings.Join(f.Commands, " ")
		if f.Code == "tunnel_mtu" || strings.Contains(all, fmt.Sprint(b.Delivered-40)) || strings.Contains(all, fmt.Sprintf("mtu %d", b.Delivered)) {
			t.Errorf("%s: fix %+v takes the bracket's floor for the path MTU", what, f)
		}
		if f.Code == "clamp_mss" && !strings.Contains(all, "set rt mtu") {
			t.Errorf("%s: clamp %+v does not follow the route MTU", what, f)
		}
	}
	out, _ := exec.Command(bin, append([]string{"analyze"}, args...)...).Output()
	head := fmt.Sprintf("path MTU    between %d and %d bytes, not measured: ", b.Delivered, b.Lost-1)
	if !strings.Contains(string(out), head) || !strings.Contains(string(out), reason+" was sent") && !strings.Contains(string(out), reason+" say nothing") {
		t.Errorf("%s: the headline does not give the range with its reason:\n%s", what, out)
	}
}
