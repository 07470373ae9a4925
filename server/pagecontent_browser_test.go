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

// TestPageContentInBrowser opens the page in Chromium behind the content
// devices. Behind S13's (resets, both ways, every connection whose
// ClientHello carries the post-quantum key share, as Chromium's does at
// every size) and S14's (the same for ML-DSA, which Chromium 156 offers
// too) the report must name the reset by the path (neither the server nor
// the browser sent it) and the hello's features, rule packet size out and
// give each audience its fixes: not tls_failed alone. Behind S15's (drops
// a split hello's first segment) nothing of any hello arrives: the report
// names the device and a busy computer as the two explanations and claims
// neither. One browser at a time.
func TestPageContentInBrowser(t *testing.T) {
	t.Parallel()
	testnet.RequireTools(t, "chromium")
	cases := []struct {
		scenario  string
		families  []int
		verdict   diagnose.Verdict
		direction diagnose.Direction
		code      string   // the first finding's
		says      []string // the page's summary
		fixes     []string
	}{
		{"S13", []int{4, 6}, diagnose.VerdictTLSFailed, diagnose.Upstream, server.CodeHelloResetByPath,
			[]string{"RST it did not send", "neither end sent it", "network error", "not because of its size", "X25519MLKEM768 (0x11EC)", "mtuscope probe"},
			[]string{"device_allow_pq", "operator_pq_device", "chrome_pq_policy"}},
		{"S14", []int{4}, diagnose.VerdictTLSFailed, diagnose.Upstream, server.CodeHelloResetByPath,
			[]string{"RST it did not send", "neither end sent it", "not because of its size", "X25519MLKEM768 (0x11EC)", "ML-DSA", "mtuscope probe"},
			[]string{"device_allow_pq", "device_allow_mldsa"}},
		{"S15", []int{4}, diagnose.VerdictInconclusive, diagnose.Unknown, server.CodeHelloNeverArrived,
			[]string{"No part of the ClientHello reached the server", "too busy", "nothing certain"}, nil},
	}
	for _, c := range cases {
		t.Run(c.scenario, func(t *testing.T) {
			sc := testnet.Preset(c.scenario)
			device := sc.Networks[0].Device
			sc.Networks[0].Device = "" // in the path once serve answers: servetest's readiness check is a post-quantum Go hello
			n := testnet.New(t, sc)
			srv := servetest.Start(t, n)
			mb := n.StartMiddlebox(t, 0, device)
			for _, fam := range c.families {
				t.Run(fmt.Sprintf("v%d", fam), func(t *testing.T) {
					d, summary, body := pageBehindDevice(t, n, srv, c.scenario, fam)
					first := d.Findings[0]
					if first.Code != c.code || d.Verdict != c.verdict || d.Direction != c.direction {
						t.Errorf("stored report: %s/%s, first finding %s, want %s/%s, %s: %s", d.Verdict, d.Direction, first.Code,
							c.verdict, c.direction, c.code, first.Detail)
					}
					for _, want := range c.says {
						if !strings.Contains(summary, want) {
							t.Errorf("the page's summary does not say %q: %s", want, summary)
						}
					}
					for _, code := range c.fixes {
						if !slices.ContainsFunc(d.Fixes, func(f diagnose.Fix) bool { return f.Code == code }) {
							t.Errorf("no fix %s: %+v", code, d.Fixes)
						}
					}
					if c.code == server.CodeHelloResetByPath {
						if d.PathMTU != 1500 {
							t.Errorf("path MTU %d, want 1500: packets of every size crossed", d.PathMTU)
						}
						for _, want := range []string{"For your network team", "For the operator of the service", "For you, until the network is fixed"} {
							if !strings.Contains(body, want) {
								t.Errorf("the page has no section %q", want)
							}
						}
					}
				})
			}
			if c.code == server.CodeHelloResetByPath {
				if resets := mb.Hellos("reset"); len(resets) < 2 {
					t.Errorf("the device reset %d connections, want the page's: %+v", len(resets), mb.Events())
				}
			}
		})
	}
}

// pageBehindDevice runs the page in a fresh Chromium over plain HTTP (the
// devices reset or drop the page's own HTTPS too; the rungs are HTTPS:
// serve has a trusted certificate) and returns the stored report's
// diagnosis, the page's summary and its text. It keeps a screenshot and
// the report's JSON among the artifacts, and fails the test where a rung
// shows a size lost that no size explains.
func pageBehindDevice(t *testing.T, n *testnet.Net, srv *servetest.Serve, scenario string, fam int) (diagnose.Diagnosis, string, string) {
	testnet.Heavy(t, 1)
	b := n.Client.StartChromium(t, "--ignore-certificate-errors")
	ctx, cancel := b.NewContext(context.Background())
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	url := srv.HTTPURL(fam, server.PagePath)
	tctx, tcancel := context.WithTimeout(ctx, 150*time.Second)
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
	t.Logf("%s over IPv%d: %s in %v (%s)\n%s", scenario, fam, verdict, time.Since(start).Round(time.Millisecond), location, summary)
	dir := servetest.ArtifactDir()
	os.MkdirAll(dir, 0o755)
	name := fmt.Sprintf("serve-%s-v%d-result", scenario, fam)
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
	var rep server.Report
	if err := servetest.GetJSON(ctx, servetest.Client(n.Client), location+".json", &rep); err != nil {
		t.Fatal(err)
	}
	if js, err := json.MarshalIndent(rep, "", " "); err == nil {
		os.WriteFile(filepath.Join(dir, name+".json"), js, 0o644)
	}
	p := rep.Primary()
	if p == nil || len(p.Diagnosis.Findings) == 0 {
		t.Fatalf("stored report %s has no finding", location)
	}
	for _, r := range p.Rungs {
		if r.Test.Up == diagnose.Failed || r.Test.Down == diagnose.Failed {
			t.Errorf("rung %d shows a size lost (%s up, %s down): the device resets or drops by content, no size is lost",
				r.MSS, r.Test.Up, r.Test.Down)
		}
	}
	return p.Diagnosis, summary, body
}
