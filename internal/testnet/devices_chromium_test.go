package testnet

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumCases: what Chromium 156 (X25519MLKEM768 and ML-DSA offered, a
// hello of about 1,950 bytes padded out of the 256-511 window) does
// through each device, and once the device is stopped.
var chromiumCases = []struct {
	name    string
	on, off outcome
}{
	{"S13", resets, passes},
	{"S14", resets, passes},
	{"S15", hangs, passes},
	{"S16", passes, passes},
	{"S17", hangs, hangs},
}

// TestContentScenariosChromium loads a page in Chromium through each
// device, IPv4 and IPv6: ERR_CONNECTION_RESET through the resetting
// devices, a hang through the split-intolerant one and S17's black hole,
// and the page once the device is stopped. A capture of the client's
// packets, decoded by tshark, shows what Chromium's hello carried. The
// scenarios run one after the other: one browser at a time.
func TestContentScenariosChromium(t *testing.T) {
	RequireTools(t, "chromium", "tshark")
	for _, c := range chromiumCases {
		t.Run(c.name, func(t *testing.T) {
			n := New(t, Preset(c.name))
			ng := n.StartNginx(t)
			mb := n.Middleboxes[0]
			Heavy(t, 1)
			b := n.Client.StartChromium(t, "--ignore-certificate-errors")
			ctx, cancel := b.NewContext(context.Background())
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
				t.Fatal(err)
			}
			capt, err := n.Client.Capture("eth0", filepath.Join(t.TempDir(), "client.pcap"), "tcp port 443")
			if err != nil {
				t.Fatal(err)
			}
			for _, fam := range []int{4, 6} {
				if got := browse(ctx, ng.URL(fam, "/small.txt"), c.on); got != c.on {
					t.Errorf("v%d through %s: %s, want %s", fam, mb.Kind, got, c.on)
				}
			}
			if _, err := capt.Stop(); err != nil {
				t.Fatal(err)
			}
			checkChromiumHello(t, capt.File)
			// The device stopped Chromium's connections itself, each family's;
			// in S17 the black hole stops them before it sees them whole.
			if stopped := len(waitStopped(mb, 2)); c.on != passes && c.name != "S17" && stopped < 2 {
				t.Errorf("device reports stopping %d connections, want 2 or more: %+v", stopped, mb.Events())
			}
			if hs := mb.Hellos(""); len(hs) > 0 {
				t.Logf("device read %d hellos from Chromium, the first %s: %s", len(hs), hs[0].Action, hs[0].Hello)
			}
			if err := mb.Stop(); err != nil {
				t.Fatal(err)
			}
			// A new browser context has its own socket pools: the tab
			// above may still wait on a connection whose hello the
			// device held, retransmitted only at the next backoff.
			octx, ocancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
			defer ocancel()
			if err := chromedp.Do(octx, chromedp.Navigate("about:blank")); err != nil {
				t.Fatal(err)
			}
			for _, fam := range []int{4, 6} {
				if got := browse(octx, ng.URL(fam, "/small.txt"), c.off); got != c.off {
					t.Errorf("v%d with the device off: %s, want %s", fam, got, c.off)
				}
			}
		})
	}
}

// browse navigates the tab to url and names the outcome; a navigation
// expected to hang gets hangAfter*3, others okWithin.
func browse(ctx context.Context, url string, want outcome) outcome {
	wait := okWithin
	if want == hangs {
		wait = 3 * hangAfter
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err := chromedp.Do(lctx, chromedp.Navigate(url))
	switch {
	case err == nil:
		return passes
	case strings.Contains(err.Error(), "ERR_CONNECTION_RESET"):
		return resets
	case errors.Is(err, context.DeadlineExceeded) || lctx.Err() != nil:
		return hangs
	}
	return outcome(err.Error())
}

// checkChromiumHello decodes the capture's ClientHellos with tshark and
// checks that Chromium offered an X25519MLKEM768 key share and the three
// ML-DSA signature algorithms: what S13 and S14's devices react to.
func checkChromiumHello(t *testing.T, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tshark", "-r", file, "-Y", "tls.handshake.type == 1",
		"-T", "fields", "-E", "aggregator=,", "-e", "tls.handshake.extensions_key_share_group", "-e", "tls.handshake.sig_hash_alg").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatalf("no ClientHello in the capture %s", file)
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 2 {
			t.Fatalf("tshark line %q", l)
		}
		shares, algs := codepoints(f[0]), codepoints(f[1])
		if !slices.Contains(shares, 0x11ec) || !slices.Contains(algs, 0x0904) || !slices.Contains(algs, 0x0905) || !slices.Contains(algs, 0x0906) {
			t.Errorf("Chromium's hello: key shares %#04x, signature algorithms %#04x; want 0x11ec and 0x0904-0x0906", shares, algs)
		}
	}
	t.Logf("%d ClientHellos from Chromium, each with an X25519MLKEM768 key share and ML-DSA 0x0904-0x0906", len(lines))
}

// codepoints parses tshark's comma-separated values (decimal or 0x hex).
func codepoints(s string) []uint16 {
	var out []uint16
	for _, v := range strings.Split(s, ",") {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 0, 16); err == nil {
			out = append(out, uint16(n))
		}
	}
	return out
}
