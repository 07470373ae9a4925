package testnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet/middlebox"
)

// outcome is how a real client's connection through a device ended.
type outcome string

const (
	passes outcome = "completes"
	resets outcome = "reset"
	hangs  outcome = "hangs"
)

// classify names a client's error; anything else is returned as is.
func classify(err error) outcome {
	switch {
	case err == nil:
		return passes
	case errors.Is(err, syscall.ECONNRESET):
		return resets
	case errors.Is(err, context.DeadlineExceeded):
		return hangs
	}
	return outcome(err.Error())
}

// goClient dials nginx from the client with crypto/tls, the given
// key-exchange preferences (nil: Go's defaults, X25519MLKEM768 first) and
// MSS (0: the link's), and returns how the handshake ended within wait.
func goClient(n *Net, ng *Nginx, fam int, curves []tls.CurveID, mss int, wait time.Duration) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	d := &net.Dialer{}
	if mss > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss) })
			return errors.Join(err, serr)
		}
	}
	c, err := n.Client.Dialer(d)(ctx, "tcp", ng.Addr(n.Server.Addr(fam)))
	if err != nil {
		return classify(fmt.Errorf("dial: %w", err))
	}
	defer c.Close()
	cfg, err := ng.TLSConfig()
	if err != nil {
		return outcome(err.Error())
	}
	cfg.CurvePreferences = curves
	err = tls.Client(c, cfg).HandshakeContext(ctx)
	if ctx.Err() != nil {
		err = context.DeadlineExceeded
	}
	return classify(err)
}

// curlClient fetches /small.txt with curl (OpenSSL 3.0 here: no
// post-quantum group, no ML-DSA).
func curlClient(n *Net, ng *Nginx, fam int, wait time.Duration) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), wait+5*time.Second)
	defer cancel()
	r := n.Client.Run(ctx, "curl", ng.Curl(fam, "/small.txt", wait)...)
	switch {
	case r.ExitCode == 0 && string(r.Stdout) == "200 100":
		return passes
	case r.ExitCode == 35 || r.ExitCode == 56: // SSL connect error, receive error: a reset
		return resets
	case r.ExitCode == 28:
		return hangs
	}
	return outcome(r.String())
}

// clientWant is what each real client does through a device, per family.
type clientWant struct {
	goDefault, goClassic, curl outcome
}

// waitEvents waits (a bounded while) until the device has reported at
// least n hellos with the action, and returns them.
func waitEvents(t *testing.T, mb *Middlebox, action string, n int) []middlebox.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		hs := mb.Hellos(action)
		if len(hs) >= n || time.Now().After(deadline) {
			return hs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestContentScenarios shows real clients failing through each device as
// users report, on IPv4 and IPv6, and passing on the same path once the
// device is off.
func TestContentScenarios(t *testing.T) {
	cases := []struct {
		name string
		want clientWant
		// resetsOrDrops is the action the device reports for the hellos
		// it stops.
		action string
	}{
		{"S13", clientWant{goDefault: resets, goClassic: passes, curl: passes}, "reset"},
	}
	classic := []tls.CurveID{tls.X25519}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := New(t, Preset(c.name))
			ng := n.StartNginx(t)
			mb := n.Middleboxes[0]
			if mb == nil {
				t.Fatalf("%s has no device", c.name)
			}
			stopped := 0
			for _, fam := range []int{4, 6} {
				got := clientWant{
					goDefault: goClient(n, ng, fam, nil, 0, 4*time.Second),
					goClassic: goClient(n, ng, fam, classic, 0, 4*time.Second),
					curl:      curlClient(n, ng, fam, 4*time.Second),
				}
				if got != c.want {
					t.Errorf("v%d through %s: %+v, want %+v", fam, mb.Kind, got, c.want)
				}
				for _, o := range []outcome{got.goDefault, got.goClassic, got.curl} {
					if o != passes {
						stopped++
					}
				}
			}
			// The device says it was the one: one stopped hello per
			// failed connection, at least (retransmissions add more).
			if hs := waitEvents(t, mb, c.action, stopped); len(hs) < stopped {
				t.Errorf("device reported %d hellos %s, want %d: %+v", len(hs), c.action, stopped, mb.Events())
			}
			if err := mb.Stop(); err != nil {
				t.Fatal(err)
			}
			checkRulesGone(t, mb.Host)
			for _, fam := range []int{4, 6} {
				got := clientWant{
					goDefault: goClient(n, ng, fam, nil, 0, 10*time.Second),
					goClassic: goClient(n, ng, fam, classic, 0, 10*time.Second),
					curl:      curlClient(n, ng, fam, 10*time.Second),
				}
				if all := (clientWant{passes, passes, passes}); got != all {
					t.Errorf("v%d with the device off: %+v, want %+v", fam, got, all)
				}
			}
		})
	}
}

// checkRulesGone fails the test if a device left its queue rules behind.
func checkRulesGone(t *testing.T, h *Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tool := range []string{"iptables", "ip6tables"} {
		r := h.Run(ctx, tool, "-w", "10", "-S", "FORWARD")
		if r.Err != nil || strings.Contains(string(r.Stdout), "NFQUEUE") {
			t.Errorf("%s after the device stopped: %s", tool, r)
		}
	}
}
