package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/server"
)

// TestPageContentInBrowser opens the page in Chromium behind S13's device,
// which resets (both ways) every connection whose ClientHello carries the
// post-quantum key share, as Chromium's does at every size. The report
// must name the reset by the path (neither the server nor the browser
// sent it) and the hello's features, rule packet size out, and give each
// audience its fixes; not tls_failed alone. IPv4 and IPv6, one browser
// after the other.
func TestPageContentInBrowser(t *testing.T) {
	t.Parallel()
	testnet.RequireTools(t, "chromium")
	sc := testnet.Preset("S13")
	device := sc.Networks[0].Device
	sc.Networks[0].Device = "" // in the path once serve answers: servetest's readiness check is a post-quantum Go hello
	n := testnet.New(t, sc)
	srv := servetest.Start(t, n)
	mb := n.StartMiddlebox(t, 0, device)
	for _, fam := range []int{4, 6} {
		t.Run(fmt.Sprintf("v%d", fam), func(t *testing.T) {
			b := n.Client.StartChromium(t, "--ignore-certificate-errors")
			ctx, cancel := b.NewContext(context.Background())
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
				t.Fatal(err)
			}
			// The device resets the page's own HTTPS connection too: a
			// customer behind it opens the page over http://; the rungs
			// are HTTPS (serve has a trusted certificate).
			url := srv.HTTPURL(fam, server.PagePath)
			tctx, tcancel := context.WithTimeout(ctx, 120*time.Second)
			defer tcancel()
			start := time.Now()
			err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("verdict-code")),
				chromedp.WaitReady(chromedp.ID("report-text")))
			if err != nil {
				status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
				t.Fatalf("%s: the page did not reach a result: %v (status %q)", url, err, status)
			}
			verdict, _ := chromedp.Run(tctx, chromedp.Text(chromedp.ID("verdict-code")))
			summary, _ := chromedp.Run(tctx, chromedp.Text(chromedp.ID("summary")))
			body, _ := chromedp.Run(tctx, chromedp.TextContent(chromedp.CSS("main")))
			location, _ := chromedp.Run(tctx, chromedp.Location())
			t.Logf("S13 over IPv%d: %s in %v (%s)\n%s", fam, verdict, time.Since(start).Round(time.Millisecond), location, summary)
			if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
				dir := servetest.ArtifactDir()
				os.MkdirAll(dir, 0o755)
				f := filepath.Join(dir, fmt.Sprintf("serve-S13-v%d-result.png", fam))
				os.WriteFile(f, png, 0o644)
				t.Logf("screenshot: %s", f)
			}
			var rep server.Report
			if err := servetest.GetJSON(ctx, servetest.Client(n.Client), location+".json", &rep); err != nil {
				t.Fatal(err)
			}
			if js, err := json.MarshalIndent(rep, "", " "); err == nil {
				os.WriteFile(filepath.Join(servetest.ArtifactDir(), fmt.Sprintf("serve-S13-v%d-result.json", fam)), js, 0o644)
			}
			p := rep.Primary()
			if p == nil || len(p.Diagnosis.Findings) == 0 {
				t.Fatalf("stored report %s has no finding", location)
			}
			d := p.Diagnosis
			first := d.Findings[0]
			if first.Code != server.CodeHelloResetByPath || d.Verdict != diagnose.VerdictTLSFailed || d.Direction != diagnose.Upstream {
				t.Errorf("stored report: %s/%s, first finding %s: %s", d.Verdict, d.Direction, first.Code, first.Detail)
				for _, r := range p.Rungs {
					t.Logf("rung %d: %+v browser %+v", r.MSS, r.Test, r.Browser)
				}
			}
			for _, want := range []string{"RST it did not send", "neither end sent it", "not because of its size", "network error", "X25519MLKEM768 (0x11EC)", "mtuscope probe"} {
				if !strings.Contains(summary, want) {
					t.Errorf("the page's summary does not say %q: %s", want, summary)
				}
			}
			if d.PathMTU != 1500 {
				t.Errorf("path MTU %d, want 1500: packets of every size crossed", d.PathMTU)
			}
			for _, r := range p.Rungs {
				if r.Test.Up == diagnose.Failed || r.Test.Down == diagnose.Failed {
					t.Errorf("rung %d shows a size lost (%s up, %s down): the device resets, it loses nothing", r.MSS, r.Test.Up, r.Test.Down)
				}
			}
			for _, code := range []string{"device_allow_pq", "operator_pq_device", "chrome_pq_policy"} {
				if !slices.ContainsFunc(d.Fixes, func(f diagnose.Fix) bool { return f.Code == code }) {
					t.Errorf("no fix %s: %+v", code, d.Fixes)
				}
			}
			for _, want := range []string{"For your network team", "For the operator of the service", "For you, until the network is fixed"} {
				if !strings.Contains(body, want) {
					t.Errorf("the page has no section %q", want)
				}
			}
		})
	}
	if resets := mb.Hellos("reset"); len(resets) < 2 {
		t.Errorf("the device reset %d connections, want the page's of both families: %+v", len(resets), mb.Events())
	}
}
