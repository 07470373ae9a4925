package analyze_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/findingtest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// TestAnalyzeLossyIsOK is S9: a clean path with 1% random loss both ways.
// Downloads over it lose packets of every size, and recover: no capture,
// alone or paired, may read that as a size limit.
func TestAnalyzeLossyIsOK(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "tcpdump", "curl", "nginx")
	bin := testnet.Mtuscope(t)
	n := testnet.New(t, testnet.Preset("S9"))
	ng := n.StartNginx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cpath, spath := captureBoth(t, n, "analyze-S9", func() {
		var wg sync.WaitGroup
		for i := range 12 {
			path := "/small.txt"
			if i%2 == 0 {
				path = "/large.bin"
			}
			wg.Go(func() {
				res := n.Client.Run(ctx, "curl", ng.Curl(4, path, 20*time.Second)...)
				t.Logf("curl %s: exit %d %s %s", path, res.ExitCode, res.Stdout, strings.TrimSpace(string(res.Stderr)))
			})
		}
		wg.Wait()
	})
	for _, args := range [][]string{{"--client", cpath, "--server", spath}, {cpath}, {spath}} {
		r := runAnalyze(t, bin, "", args...)
		t.Logf("%v: %s %s mtu %d %+v lost %d up %+v down %+v outcomes %v", args, r.Verdict, r.Direction, r.PathMTU, r.PathMTURange, len(r.Lost)+r.LostNotListed, r.Upstream, r.Downstream, r.Outcomes)
		if r.Verdict != diagnose.VerdictOK {
			t.Errorf("%v: verdict %s %s, want ok on a lossy clean path; findings %+v", args, r.Verdict, r.Direction, r.Findings)
		}
		for _, f := range r.Findings {
			for _, p := range findingtest.Problems(f) {
				t.Errorf("%v: %s", args, p)
			}
		}
	}
}
