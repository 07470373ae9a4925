package server

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// TestIPv6LimitsPerSlash64: one IPv6 network (a /64) gets what one
// address gets, however many of its addresses it uses, for every
// per-address limit: reports, sessions, operator token attempts and
// unfinished connections. (Before: each of 39 addresses of one /64 had its
// own bucket, and they stored 390 reports at once.)
func TestIPv6LimitsPerSlash64(t *testing.T) {
	t.Parallel()
	const token = "s3cret-operator-token-0123"
	s := loopback(t, func(c *Config) { c.Token = token })
	// The buckets' clock stands still: on a busy machine the requests
	// below take seconds, in which the buckets would refill.
	frozen := time.Now()
	for _, l := range []*limiter{s.repLim, s.sessLim, s.authFail} {
		l.mu.Lock()
		l.now = func() time.Time { return frozen }
		l.mu.Unlock()
	}
	h := s.pageHandler(false)
	const addrs = 39
	addr := func(i int) string { return fmt.Sprintf("[2001:db8:64:1::%x]:4000", 0x100+i) }
	serve := func(from int, method, path, body string, hdr ...string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.RemoteAddr = addr(from)
		req.TLS = &tls.ConnectionState{}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	count := func(n int, code int, method, path, body string, hdr ...string) int {
		got := 0
		for i := 0; i < addrs; i++ {
			for j := 0; j < n; j++ {
				if serve(i, method, path, body, hdr...) == code {
					got++
				}
			}
		}
		return got
	}
	sub, _ := json.Marshal(api.Submission{Target: "x", Evidence: []diagnose.Evidence{{Family: 6}}})
	perAddr := max(1, s.cfg.Limits.Burst/10)
	reports := count(10, http.StatusCreated, "POST", api.ReportsPath, string(sub))
	sessions := count(25, http.StatusCreated, "POST", api.SessionsPath, `{}`)
	count(authFailuresPerMinute, 0, "GET", api.ReportsPath, "", "Authorization", "Bearer wrong")
	right := serve(addrs, "GET", api.ReportsPath, "", "Authorization", "Bearer "+token)
	conns := 0
	for i := 0; i < addrs; i++ {
		ap := netip.MustParseAddrPort(addr(i))
		for j := 0; j < maxPendingPerAddr; j++ {
			if pc, _ := s.pending.acquire(ap.Addr()); pc != nil {
				conns++
			}
		}
	}
	t.Logf("%d addresses of one /64: %d reports stored (one address may store %d at once), %d sessions, "+
		"the right token after %d failures from each answered %d, %d unfinished connections",
		addrs, reports, perAddr, sessions, authFailuresPerMinute, right, conns)
	if reports > perAddr {
		t.Errorf("%d reports stored, want at most %d", reports, perAddr)
	}
	if limit := int(s.cfg.Limits.SessionsPerMinute); sessions > limit+1 {
		t.Errorf("%d sessions, want at most %d", sessions, limit+1)
	}
	if right != http.StatusTooManyRequests {
		t.Errorf("the right token after the /64's failures: %d, want 429", right)
	}
	if conns > maxPendingPerAddr {
		t.Errorf("%d unfinished connections, want at most %d", conns, maxPendingPerAddr)
	}
	// Another /64 is not affected.
	other := httptest.NewRequest("POST", api.ReportsPath, strings.NewReader(string(sub)))
	other.RemoteAddr = "[2001:db8:64:2::1]:4000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, other)
	if w.Code != http.StatusCreated {
		t.Errorf("a report from another /64: %d, want 201", w.Code)
	}
}

// TestSubmittedTestsBound: a report's evidence holds at most 1000 tests of
// every kind together, the ClientHello variants among them (before, 1000
// segments and any number of variants passed).
func TestSubmittedTestsBound(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	h := s.pageHandler(false)
	post := func(ev diagnose.Evidence) int {
		body, _ := json.Marshal(api.Submission{Target: "x", Evidence: []diagnose.Evidence{ev}})
		req := httptest.NewRequest("POST", api.ReportsPath, strings.NewReader(string(body)))
		req.RemoteAddr = "192.0.2.7:4000"
		req.TLS = &tls.ConnectionState{}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	ev := diagnose.Evidence{Family: 4, Segments: make([]diagnose.SegmentTest, 999)}
	ev.Variants = make([]diagnose.VariantTest, 1)
	if code := post(ev); code != http.StatusCreated {
		t.Fatalf("1000 tests: status %d, want %d", code, http.StatusCreated)
	}
	ev.Variants = make([]diagnose.VariantTest, 2)
	if code := post(ev); code != http.StatusBadRequest {
		t.Fatalf("1001 tests, two of them variants: status %d, want %d", code, http.StatusBadRequest)
	}
}
