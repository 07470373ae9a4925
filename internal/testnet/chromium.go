package testnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

// devtoolsPort is Chromium's DevTools port on the namespace's loopback.
const devtoolsPort = "9222"

// Browser is Debian's headless Chromium running inside a namespace. Its
// DevTools endpoint is reached from the test process through a forwarder
// on this process's loopback, so chromedp drives it while every connection
// the browser makes starts in the namespace.
type Browser struct {
	Host *Host
	// DevTools is the forwarded DevTools endpoint, "http://127.0.0.1:PORT".
	DevTools string
	Proc     *Proc

	fwd net.Listener
	wg  sync.WaitGroup
}

// StartChromium starts headless Chromium in the host's namespace with a new
// profile and the flags that keep it from reaching for the network on its
// own; extraFlags are added (for example
// "--ignore-certificate-errors-spki-list=..." to trust a test server's key).
// It is stopped when the test ends.
func (h *Host) StartChromium(t testing.TB, extraFlags ...string) *Browser {
	t.Helper()
	RequireTools(t, "chromium")
	b, err := h.startChromium(t.TempDir(), extraFlags)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func (h *Host) startChromium(dir string, extraFlags []string) (*Browser, error) {
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		return nil, err
	}
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-quic", "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-features=Translate,MediaRouter,OptimizationHints",
		"--user-data-dir=" + profile,
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=" + devtoolsPort,
		"--window-size=1280,1600",
	}
	args = append(args, extraFlags...)
	args = append(args, "about:blank")
	p, err := h.Start("chromium", args...)
	if err != nil {
		return nil, err
	}
	fwd, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		p.Stop()
		return nil, err
	}
	b := &Browser{Host: h, Proc: p, fwd: fwd, DevTools: "http://" + fwd.Addr().String()}
	b.wg.Add(1)
	go b.forward()
	if err := b.waitReady(); err != nil {
		b.Close()
		return nil, fmt.Errorf("chromium in %s: %v\nstderr: %s", h.Name, err, p.Stderr)
	}
	return b, nil
}

// forward relays each connection to the forwarder to the DevTools port
// inside the namespace.
func (b *Browser) forward() {
	defer b.wg.Done()
	for {
		c, err := b.fwd.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := b.Host.DialContext(ctx, "tcp", "127.0.0.1:"+devtoolsPort)
			cancel()
			if err != nil {
				return
			}
			defer r.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(r, c); done <- struct{}{} }()
			go func() { io.Copy(c, r); done <- struct{}{} }()
			<-done
		}()
	}
}

// waitReady waits for Chromium to say its DevTools endpoint listens, then
// for the endpoint to answer through the forwarder. A first start on a
// busy machine (fonts, profile, GPU process) can take well over 20 s, so
// the bound is two minutes: a browser that starts slowly is not a failure
// of the page it is to test; one that exits or never listens is.
func (b *Browser) waitReady() error {
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(b.Proc.Stderr.String(), "DevTools listening on") {
		select {
		case <-b.Proc.Done():
			return fmt.Errorf("exited: %v", b.Proc.Wait())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("DevTools did not start listening")
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-b.Proc.Done():
			return fmt.Errorf("exited: %v", b.Proc.Wait())
		default:
		}
		resp, err := client.Get(b.DevTools + "/json/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/json/version: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("DevTools not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NewContext returns a chromedp context on a new tab of the browser;
// cancelling it closes the tab.
func (b *Browser) NewContext(parent context.Context) (context.Context, context.CancelFunc) {
	actx, acancel := remote.NewAllocator(parent, b.DevTools)
	ctx, cancel := chromedp.NewContext(actx)
	return ctx, func() { cancel(); acancel() }
}

// Close stops the browser and the forwarder.
func (b *Browser) Close() {
	b.fwd.Close()
	b.Proc.Stop()
	b.wg.Wait()
}
