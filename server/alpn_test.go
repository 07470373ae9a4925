package server

import (
	"crypto/tls"
	"fmt"
	"testing"
)

// TestRungsRefuseHTTP2: every rung is HTTP/1.1 only (one test, one
// connection), whatever the client offers; the page's own listener speaks
// HTTP/2. The rung servers once shared one *tls.Config, which the HTTP/2
// set-up of each ServeTLS call appended "h2" to.
func TestRungsRefuseHTTP2(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	// alpn offers h2 alone: an HTTP/1.1-only server refuses the handshake
	// (no protocol in common) or answers without ALPN.
	alpn := func(addr string) string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err != nil {
			return "refused"
		}
		defer c.Close()
		return c.ConnectionState().NegotiatedProtocol
	}
	h2 := 0
	for _, r := range s.rungs {
		if p := alpn(fmt.Sprintf("127.0.0.1:%d", r.Port)); p == "h2" {
			h2++
		}
	}
	t.Logf("%d of %d rungs offered h2 alone negotiated it", h2, len(s.rungs))
	if h2 > 0 {
		t.Errorf("%d rungs negotiated h2, want none", h2)
	}
	if p := alpn(s.Addrs["target"]); p == "h2" {
		t.Errorf("the probe target negotiated h2, want http/1.1")
	}
	if p := alpn(s.Addrs["https"]); p != "h2" {
		t.Errorf("the page negotiated %q, want h2", p)
	}
}
