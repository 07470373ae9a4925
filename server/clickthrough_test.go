package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// TestClickThroughInBrowser: a newcomer opens the https URL serve prints
// second, and clicks through Chromium's certificate warning. Chromium's
// exception covers the rung ports (it refuses each new connection's
// certificate once, then connects again under the exception), so the page
// measures: ok. A certificate check that counted every refusal, on
// measured sizes too, turned this into "not trusted" (93 refusals, 31 of
// 31 sizes passed).
func TestClickThroughInBrowser(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S1"))
	startDefaultServe(t, n)
	testnet.Heavy(t, 1)
	ctx, tctx := newTab(t, n.Server.StartChromium(t))
	chromedp.Do(tctx, chromedp.Navigate("https://localhost:8443/"))
	err := chromedp.Do(tctx, chromedp.Click(chromedp.ID("details-button")), chromedp.Click(chromedp.ID("proceed-link")))
	if err != nil {
		t.Fatalf("no certificate warning to click through: %v", err)
	}
	err = chromedp.Do(tctx, chromedp.WaitVisible(chromedp.ID("verdict-code")), chromedp.WaitReady(chromedp.ID("report-text")))
	shot(t, ctx, "serve-click-through.png")
	if err != nil {
		t.Logf("no report: %v", err)
	}
	text := func(id string) string {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		defer qcancel()
		v, _ := chromedp.Run(qctx, chromedp.Text(chromedp.ID(id)))
		return v
	}
	verdict, status := text("verdict-code"), text("status")
	t.Logf("after clicking through: verdict %q, status %q", verdict, status)
	if verdict != "ok" {
		t.Errorf("after clicking through the warning: verdict %q, status %q; want ok on a clean loopback", verdict, status)
	}
}
