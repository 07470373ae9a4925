package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/server"
)

// TestFirstRunInBrowser is a newcomer's first run: `mtuscope serve` with
// nothing but its embedded defaults (the self-signed certificate it makes),
// then the URL it prints opened in a stock headless Chromium on the same
// machine, with no certificate flag. The page must reach a true result:
// loopback is a clean path, so ok and 1500 bytes, never tls_failed.
func TestFirstRunInBrowser(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S1"))
	p, url := startDefaultServe(t, n)
	if !strings.Contains(p.Stdout.String(), "probe target: localhost:8444 ") {
		t.Errorf("serve does not print its probe target: %q", p.Stdout.String())
	}
	testnet.Heavy(t, 1)
	ctx, tctx := newTab(t, n.Server.StartChromium(t))
	err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("verdict-code")),
		chromedp.WaitReady(chromedp.ID("report-text")))
	shot(t, ctx, "serve-first-run.png")
	if err != nil {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		defer qcancel()
		status, _ := chromedp.Run(qctx, chromedp.Text(chromedp.ID("status")))
		loc, _ := chromedp.Run(qctx, chromedp.Location())
		t.Fatalf("%s: the page did not reach a result: %v (at %s, status %q)", url, err, loc, status)
	}
	verdict, _ := chromedp.Run(tctx, chromedp.Text(chromedp.ID("verdict-code")))
	family, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#tested dd:nth-of-type(2)")))
	mtu, _ := chromedp.Run(tctx, chromedp.Text(chromedp.ID("path-mtu")))
	t.Logf("first run at %s: %s, %s, path MTU %s", url, family, verdict, mtu)
	// localhost is ::1 or 127.0.0.1: the largest rung, MSS 1460, is a
	// packet of 1520 or 1500 bytes.
	want := map[string]int{"IPv4": 1500, "IPv6": 1520}[family]
	if got, _ := strconv.Atoi(mtu); verdict != "ok" || got != want {
		t.Errorf("the first run says %s, path MTU %s over %s; loopback is clean: want ok, %d", verdict, mtu, family, want)
	}
}

// startDefaultServe starts `mtuscope serve` on its embedded defaults (a
// fresh data directory) on n's server and returns it with the URL it prints
// first; its output is logged when the test fails.
func startDefaultServe(t *testing.T, n *testnet.Net) (*testnet.Proc, string) {
	t.Helper()
	p, err := n.Server.Start("env", "XDG_DATA_HOME="+t.TempDir(), testnet.Mtuscope(t), "serve")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("serve stdout:\n%s\nstderr:\n%s", p.Stdout.String(), tailOf(p.Stderr.String(), 6000))
		}
	})
	return p, printedURL(t, p)
}

// newTab opens a blank tab in b: ctx for quick queries, tctx bounding a
// page's whole check to two minutes. Both end with the test.
func newTab(t *testing.T, b *testnet.Browser) (ctx, tctx context.Context) {
	t.Helper()
	ctx, cancel := b.NewContext(context.Background())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(tcancel)
	return ctx, tctx
}

// printedURL waits for serve's start-up lines and returns the URL it tells
// a person to open first. Its lines are written one by one: the start-up
// is over when it logs "serving" (after the last of them).
func printedURL(t *testing.T, p *testnet.Proc) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(?:open|page): (\S+)`)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.Stdout.String()); m != nil && strings.Contains(p.Stderr.String(), "msg=serving") {
			return m[1]
		}
		select {
		case <-p.Done():
			t.Fatalf("serve exited: %v\nstderr: %s", p.Wait(), p.Stderr.String())
		default:
		}
	}
	t.Fatalf("serve printed no URL in 60 s; stdout %q", p.Stdout.String())
	return ""
}

// shot saves a screenshot of the tab to the artifact directory.
func shot(t *testing.T, ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot: %v", err)
		return
	}
	dir := servetest.ArtifactDir()
	os.MkdirAll(dir, 0o755)
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, png, 0o644); err != nil {
		t.Log(err)
		return
	}
	t.Logf("screenshot: %s", f)
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestUntrustedCertificateInBrowser: a server whose certificate the browser
// does not trust (here the test CA, which a stock Chromium does not know;
// in a real deployment a broken chain). The page, opened over http://,
// reaches the rungs over TLS and the browser refuses every handshake: the
// page must say that the certificate is not trusted, and the server must
// store no network verdict.
func TestUntrustedCertificateInBrowser(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S1"))
	srv := servetest.Start(t, n)
	testnet.Heavy(t, 1)
	ctx, tctx := newTab(t, n.Client.StartChromium(t)) // no certificate flag
	url := srv.HTTPURL(4, server.PagePath)
	var status string
	err := chromedp.Do(tctx, chromedp.Navigate(url))
	if err == nil {
		_, err = chromedp.Run(tctx, chromedp.Poll[bool](
			`document.getElementById("status").textContent.startsWith("The check could not finish")`,
			chromedp.WithPollingTimeout(100*time.Second)))
	}
	if err == nil {
		status, err = chromedp.Run(tctx, chromedp.Text(chromedp.ID("status")))
	}
	shot(t, ctx, "serve-untrusted-certificate.png")
	if err != nil {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		defer qcancel()
		loc, _ := chromedp.Run(qctx, chromedp.Location())
		verdict, _ := chromedp.Run(qctx, chromedp.Text(chromedp.ID("verdict-code")))
		t.Fatalf("%s: the page did not stop on the certificate: %v (at %s, verdict %q)", url, err, loc, verdict)
	}
	t.Logf("the page says: %s", status)
	if !strings.Contains(status, "certificate is not trusted by this browser") || !strings.Contains(status, "unknown certificate") {
		t.Errorf("the page's message does not say the certificate is not trusted: %q", status)
	}
	var list struct {
		Count   int              `json:"count"`
		Reports []map[string]any `json:"reports"`
	}
	admin := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: n.Server.Dialer(&net.Dialer{})}}
	if err := servetest.GetJSON(ctx, admin, fmt.Sprintf("http://127.0.0.1:%d%s", servetest.AdminPort, api.ReportsPath), &list); err != nil {
		t.Fatal(err)
	}
	if list.Count != 0 {
		t.Errorf("the server stored %d reports for a check the browser could not run: %v", list.Count, list.Reports)
	}
	if !strings.Contains(srv.Proc.Stderr.String(), "refused the server's certificate") {
		t.Errorf("serve's log does not tell the operator the certificate was refused")
	}
}
