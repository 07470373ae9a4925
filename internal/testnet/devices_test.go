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

// goClient dials nginx from h with crypto/tls, the given key-exchange
// preferences (nil: Go's defaults, X25519MLKEM768 first) and MSS (0: the
// link's), and returns how the handshake ended within wait.
func goClient(h *Host, ng *Nginx, fam int, curves []tls.CurveID, mss int, wait time.Duration) outcome {
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
	c, err := h.Dialer(d)(ctx, "tcp", ng.Addr(ng.Host.Addr(fam)))
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

// clients is how each real client's connection ended, one family.
type clients struct {
	// Go's crypto/tls with its defaults (X25519MLKEM768 and X25519 key
	// shares, a 1503-byte hello: two segments) and with X25519 alone (a
	// 271-byte hello); curl (OpenSSL 3.0: a 508-byte hello, no
	// post-quantum group, no ML-DSA).
	goDefault, goClassic, curl outcome
	// The two Go clients again with an MSS of 1300, so that their
	// packets fit through S17's 1400-byte black hole.
	goDefaultMSS, goClassicMSS outcome
}

// runClients runs every client once over the family. A client expected
// to hang is given hangAfter*2 to show it does; the others okWithin to
// complete, which a busy machine may need.
func runClients(n *Net, ng *Nginx, fam int, want clients) clients {
	wait := func(o outcome) time.Duration {
		if o == hangs {
			return 2 * hangAfter
		}
		return okWithin
	}
	classic := []tls.CurveID{tls.X25519}
	return clients{
		goDefault:    goClient(n.Client, ng, fam, nil, 0, wait(want.goDefault)),
		goClassic:    goClient(n.Client, ng, fam, classic, 0, wait(want.goClassic)),
		curl:         curlClient(n, ng, fam, wait(want.curl)),
		goDefaultMSS: goClient(n.Client, ng, fam, nil, 1300, wait(want.goDefaultMSS)),
		goClassicMSS: goClient(n.Client, ng, fam, classic, 1300, wait(want.goClassicMSS)),
	}
}

// waitStopped waits (a bounded while) until the device has reported
// stopping at least n connections, and returns those it reported.
func waitStopped(mb *Middlebox, n int) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := mb.Stopped()
		if len(s) >= n || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// contentCases are what real clients do through each device (on) and on
// the same path once it is stopped (off), measured on this machine.
var contentCases = []struct {
	name    string
	on, off clients
	// byDevice is how many of the clients failing with the device on it
	// stopped itself (S17's black hole stops the others first).
	byDevice int
}{
	{"S13", clients{resets, passes, passes, resets, passes}, allPass, 2},
	{"S14", allPass, allPass, 0},
	{"S15", clients{hangs, passes, passes, hangs, passes}, allPass, 2},
	{"S16", clients{passes, hangs, hangs, passes, hangs}, allPass, 3},
	{"S17", clients{hangs, hangs, hangs, resets, passes}, clients{hangs, hangs, hangs, passes, passes}, 1},
}

var allPass = clients{passes, passes, passes, passes, passes}

// TestContentScenarios shows real clients failing through each device as
// users report, on IPv4 and IPv6, and passing on the same path once the
// device is off; the device's own report names each connection it
// stopped. Chromium: TestContentScenariosChromium.
func TestContentScenarios(t *testing.T) {
	for _, c := range contentCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := New(t, Preset(c.name))
			ng := n.StartNginx(t)
			mb := n.Middleboxes[0]
			if mb == nil {
				t.Fatalf("%s has no device", c.name)
			}
			for _, fam := range []int{4, 6} {
				if got := runClients(n, ng, fam, c.on); got != c.on {
					t.Errorf("v%d through %s: %+v, want %+v", fam, mb.Kind, got, c.on)
				}
			}
			if got := waitStopped(mb, 2*c.byDevice); len(got) != 2*c.byDevice {
				t.Errorf("device reports stopping %d connections, want %d: %+v", len(got), 2*c.byDevice, mb.Events())
			}
			if err := mb.Stop(); err != nil {
				t.Fatal(err)
			}
			checkRulesGone(t, mb.Host)
			for _, fam := range []int{4, 6} {
				if got := runClients(n, ng, fam, c.off); got != c.off {
					t.Errorf("v%d with the device off: %+v, want %+v", fam, got, c.off)
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

// TestMiddleboxFailsOpen: a device killed outright (no clean stop) leaves
// its rules behind, and --queue-bypass lets the packets through: a dead
// device never turns the path into a black hole.
func TestMiddleboxFailsOpen(t *testing.T) {
	n := New(t, Preset("S13"))
	ng := n.StartNginx(t)
	mb := n.Middleboxes[0]
	if got := goClient(n.Client, ng, 4, nil, 0, okWithin); got != resets {
		t.Fatalf("Go's default hello through S13: %s, want %s", got, resets)
	}
	mb.Proc.Signal(syscall.SIGKILL)
	<-mb.Proc.Done()
	for _, fam := range []int{4, 6} {
		if got := goClient(n.Client, ng, fam, nil, 0, okWithin); got != passes {
			t.Errorf("v%d with the device killed: %s, want %s", fam, got, passes)
		}
	}
}

// TestMiddleboxPerNetwork: a device sits on its own network's path only
// (watch's scenario: one customer network behind the post-quantum
// rejecting device, the others clean).
func TestMiddleboxPerNetwork(t *testing.T) {
	n := New(t, Scenario{Name: "per-network", Networks: []Faults{{}, {Device: "pq-reject"}}})
	ng := n.StartNginx(t)
	if n.Middleboxes[0] != nil || n.Middleboxes[1] == nil {
		t.Fatalf("middleboxes %v, want one on network 1 only", n.Middleboxes)
	}
	for _, fam := range []int{4, 6} {
		for i, want := range []outcome{passes, resets} {
			if got := goClient(n.Clients[i], ng, fam, nil, 0, okWithin); got != want {
				t.Errorf("v%d: network %d's Go default hello: %s, want %s", fam, i, got, want)
			}
		}
	}
	if got := len(waitStopped(n.Middleboxes[1], 2)); got != 2 {
		t.Errorf("the device reports stopping %d connections, want 2", got)
	}
}
