package testnet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestChromium loads a page from nginx across the testbed in a real browser:
// in S1 it loads; in S2 (black hole) it does not.
func TestChromium(t *testing.T) {
	for _, name := range []string{"S1", "S2"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := New(t, Preset(name))
			ng := n.StartNginx(t)
			if err := os.WriteFile(filepath.Join(ng.Dir, "www", "index.html"),
				[]byte("<!doctype html><title>t</title><p id=x>loaded from the server</p>"), 0o644); err != nil {
				t.Fatal(err)
			}
			Heavy(t, 1)
			b := n.Client.StartChromium(t, "--ignore-certificate-errors")
			ctx, cancel := b.NewContext(context.Background())
			defer cancel()
			ctx, cancel2 := context.WithTimeout(ctx, 20*time.Second)
			defer cancel2()
			// Warm the browser up on a blank page first, so the bound
			// below measures the page load, not the browser's start.
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
				t.Fatal(err)
			}
			lctx, lcancel := context.WithTimeout(ctx, 4*time.Second)
			defer lcancel()
			var text string
			err := chromedp.Do(lctx, chromedp.Navigate(ng.URL(4, "/index.html")))
			if err == nil {
				text, err = chromedp.Run(lctx, chromedp.Text(chromedp.ID("x")))
			}
			if name == "S1" {
				if err != nil || text != "loaded from the server" {
					t.Fatalf("S1: page text %q, %v", text, err)
				}
				png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
				if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
					t.Errorf("screenshot: %d bytes, %v", len(png), err)
				}
				if !strings.Contains(ng.AccessLog(), n.Client.V4.String()+" ") {
					t.Errorf("nginx did not see the client's address:\n%s", ng.AccessLog())
				}
				return
			}
			if err == nil {
				t.Fatalf("S2: the page loaded through the black hole (text %q)", text)
			}
		})
	}
}
