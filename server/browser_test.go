package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/server"
)

// TestPageInBrowser opens the page in Debian's headless Chromium in the
// client namespace, across each fault scenario, and checks the stored
// report and the page's text against the scenario's expectations.
//
// The scenarios run one after the other inside one parallel test: six
// Chromiums at once would starve the timing-sensitive tests of other
// packages on a two-core machine.
func TestPageInBrowser(t *testing.T) {
	t.Parallel()
	cases := []struct {
		scenario string
		family   int
		plain    bool // open the page over plain HTTP
	}{
		{"S1", 4, false},
		{"S2", 4, false},
		{"S3", 4, false},
		{"S7", 4, false},
		{"S8", 4, true},
		{"S6", 6, false},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			sc := testnet.Preset(c.scenario)
			n := testnet.New(t, sc)
			srv := servetest.Start(t, n)
			testnet.Heavy(t, 1) // the browser, then a probe run
			b := n.Client.StartChromium(t, "--ignore-certificate-errors")
			ctx, cancel := b.NewContext(context.Background())
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
				t.Fatal(err)
			}
			url := srv.URL(c.family, server.PagePath)
			if c.plain {
				url = srv.HTTPURL(c.family, server.PagePath)
			}
			tctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
			defer tcancel()
			start := time.Now()
			text := func(ctx context.Context, id string) string {
				v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
				if err != nil {
					t.Errorf("#%s: %v", id, err)
				}
				return v
			}
			err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("verdict-code")),
				chromedp.WaitReady(chromedp.ID("report-text"))) // the last element: the whole report has arrived
			if err != nil {
				status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
				t.Fatalf("%s: the page did not reach a result: %v (status %q)", url, err, status)
			}
			verdict, direction, mtu := text(tctx, "verdict-code"), text(tctx, "direction"), text(tctx, "path-mtu")
			body, berr := chromedp.Run(tctx, chromedp.TextContent(chromedp.CSS("main")))
			location, _ := chromedp.Run(tctx, chromedp.Location())
			took := time.Since(start).Round(time.Millisecond)
			t.Logf("%s over IPv%d: %s %s %s in %v (%s)", c.scenario, c.family, verdict, direction, mtu, took, location)
			recordTiming(t, c.scenario, c.family, took)
			if c.scenario == "S2" {
				png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Errorf("screenshot: %v", err)
				} else {
					dir := servetest.ArtifactDir()
					os.MkdirAll(dir, 0o755)
					f := filepath.Join(dir, "serve-S2-result.png")
					if err := os.WriteFile(f, png, 0o644); err != nil {
						t.Error(err)
					}
					t.Logf("screenshot of the S2 result: %s", f)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, location+".txt", nil)
				if resp, err := servetest.Client(n.Client).Do(req); err == nil {
					b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
					os.WriteFile(filepath.Join(servetest.ArtifactDir(), "serve-S2-result.txt"), b, 0o644)
				}
			}
			want := sc.Want
			if verdict != string(want.Verdict) || direction != string(want.Direction) {
				t.Errorf("page says %s/%s, want %s/%s", verdict, direction, want.Verdict, want.Direction)
			}
			if got, _ := strconv.Atoi(mtu); got != want.PathMTU {
				t.Errorf("page says path MTU %s, want %d to the byte", mtu, want.PathMTU)
			}
			i := strings.Index(location, "/r/")
			if i < 0 {
				t.Fatalf("the page did not end on a report: %s", location)
			}
			var rep server.Report
			if err := servetest.GetJSON(ctx, servetest.Client(n.Client), location+".json", &rep); err != nil {
				t.Fatal(err)
			}
			p := rep.Primary()
			if p == nil {
				t.Fatalf("stored report %s has no result", location)
			}
			if string(p.Diagnosis.Verdict) != string(want.Verdict) || string(p.Diagnosis.Direction) != string(want.Direction) ||
				p.Diagnosis.PathMTU != want.PathMTU || p.Family != c.family {
				t.Errorf("stored report: %s/%s/%d, evidence local MTU %d kernel PMTU %d", p.Diagnosis.Verdict, p.Diagnosis.Direction, p.Diagnosis.PathMTU, p.Evidence.LocalMTU, p.Evidence.KernelPMTU)
				for _, r := range p.Rungs[:min(len(p.Rungs), 40)] {
					t.Logf("rung %d: %+v browser %+v", r.MSS, r.Test, r.Browser)
				}
			}
			if rep.Client.IP != n.Client.Addr(c.family).String() {
				t.Errorf("report's client %s, want %s", rep.Client.IP, n.Client.Addr(c.family))
			}
			if want.Verdict == "pmtud_blackhole" && !strings.Contains(body, "Clamp the TCP MSS") {
				t.Errorf("the page shows no fix for the network team (%d bytes of text, %v)", len(body), berr)
			}
			// mtuscope probe on the same path, against the same server, must
			// agree with the page: same verdict, direction and path MTU, to
			// the byte.
			target := net.JoinHostPort(n.Server.Addr(c.family).String(), strconv.Itoa(servetest.TargetPort))
			d, _ := runProbe(t, n, fmt.Sprintf("-%d", c.family), "--no-icmp", "--timeout", "60s", target)
			pageMTU, _ := strconv.Atoi(mtu)
			switch {
			case d.Verdict == "inconclusive" && d.busy():
				// A computer too busy to decide says so (the hello
				// variants' attempts failed at random beside their
				// controls): no verdict, so none to disagree with.
				t.Logf("probe too busy to decide: %+v", d.Findings)
			case d.Verdict != verdict || d.Direction != direction || d.PathMTU != pageMTU:
				t.Errorf("probe says %s/%s/%d, the page %s/%s/%s; findings %+v", d.Verdict, d.Direction, d.PathMTU, verdict, direction, mtu, d.Findings)
			}
		})
	}
}

// recordTiming appends the time from load to report to
// $MTUSCOPE_ARTIFACTS/serve-page-timings.txt.
func recordTiming(t *testing.T, scenario string, family int, took time.Duration) {
	dir := servetest.ArtifactDir()
	os.MkdirAll(dir, 0o755)
	f, err := os.OpenFile(filepath.Join(dir, "serve-page-timings.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Log(err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s IPv%d load-to-report %v\n", time.Now().UTC().Format(time.RFC3339), scenario, family, took)
}
