package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
)

// TestLeaseQueue: sessions of one address get the lease one at a time, in
// order; other addresses are not held up; an IPv6 /64 is one queue; a
// waiting page that stops asking loses its place.
func TestLeaseQueue(t *testing.T) {
	ss := newSessions(10*time.Minute, 1000)
	now := time.Now()
	office := netip.MustParseAddr("203.0.113.64")
	mk := func(ip netip.Addr) *session {
		s := &session{ID: newID(), IP: ip, Created: now}
		if r := ss.add(s); r != added {
			t.Fatalf("add: %v", r)
		}
		return s
	}
	a, b, c := mk(office), mk(office), mk(office)
	other := mk(netip.MustParseAddr("198.51.100.2"))
	if ok, _ := ss.start(a, now); !ok {
		t.Fatal("the first session of an address did not start")
	}
	if ok, pos := ss.start(c, now); ok || pos != 2 {
		t.Fatalf("third session: started %v, position %d, want waiting at 2", ok, pos)
	}
	if ok, pos := ss.start(b, now); ok || pos != 1 {
		t.Fatalf("second session: started %v, position %d, want waiting at 1", ok, pos)
	}
	if ok, _ := ss.start(other, now); !ok {
		t.Fatal("another address waited for the office")
	}
	ss.release(a, now.Add(time.Second))
	if ok, _ := ss.start(c, now.Add(time.Second)); ok {
		t.Fatal("the third session jumped the queue")
	}
	if ok, _ := ss.start(b, now.Add(time.Second)); !ok {
		t.Fatal("the second session did not start after the first ended")
	}
	from, to, ok := a.window()
	if !ok || !from.Equal(now) || !to.Equal(now.Add(time.Second)) {
		t.Errorf("first session's window %v to %v", from, to)
	}
	// A lease that is never given back ends after leaseMax.
	later := now.Add(time.Second + leaseMax + time.Millisecond)
	c.mu.Lock()
	c.polled = later
	c.mu.Unlock()
	if ok, _ := ss.start(c, later); !ok {
		t.Fatal("an expired lease still blocked the queue")
	}
	// IPv6: one queue per /64.
	v6a, v6b := mk(netip.MustParseAddr("2001:db8:100:1::2")), mk(netip.MustParseAddr("2001:db8:100:1::99"))
	if ok, _ := ss.start(v6a, now); !ok {
		t.Fatal("v6 first")
	}
	if ok, _ := ss.start(v6b, now); ok {
		t.Fatal("a second address of the same /64 started while the first tested")
	}
	// Abandoned: a waiter that stops asking is dropped from the queue.
	d, e := mk(office), mk(office)
	_ = d
	if ok, pos := ss.start(e, later.Add(2*queueIdle)); ok || pos != 1 {
		t.Fatalf("after the waiter ahead went away: started %v position %d, want next in line", ok, pos)
	}
	// The queue of one address is bounded.
	busy := netip.MustParseAddr("192.0.2.77")
	for i := 0; i < maxQueued; i++ {
		mk(busy)
	}
	if r := ss.add(&session{ID: newID(), IP: busy, Created: now}); r != queueFull {
		t.Fatalf("add past the queue bound: %v", r)
	}
}

// TestResultPostedTwiceAtOnce: two posts of one session's result at the
// same moment store one report.
func TestResultPostedTwiceAtOnce(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	code, body := do(t, c, "POST", s.url("https", "/api/v1/sessions"), "application/json", strings.NewReader(`{"rtt_ms":1}`))
	if code != http.StatusCreated {
		t.Fatalf("session: %d %s", code, body)
	}
	var sess api.Session
	decode(t, body, &sess)
	if !sess.Started {
		t.Fatalf("a lone session did not start: %s", body)
	}
	var rungs []api.BrowserRung
	for _, r := range sess.Rungs {
		rungs = append(rungs, api.BrowserRung{MSS: r.MSS, Family: 4, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK})
	}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := jsonBody(api.PageResult{Rungs: rungs, RTTms: 1})
			code, body := do(t, c, "POST", s.url("https", "/api/v1/sessions/"+sess.ID+"/result"), "application/json", b)
			var out map[string]any
			if code == http.StatusCreated || code == http.StatusOK {
				decode(t, body, &out)
				ids[i], _ = out["id"].(string)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("posts answered with reports %v, want one", ids)
		}
	}
	n, err := s.store.Count(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("%d reports stored (%v), want 1", n, err)
	}
}

// TestSessionFlood: 100,000 sessions from 10,000 addresses, some tested to
// the end, some waiting, cannot lock out the next customer: the flood's
// addresses get their fair share, the table makes room, and a refused
// page is told the server is busy (it retries) rather than failing.
func TestSessionFlood(t *testing.T) {
	const max = 100000
	ss := newSessions(10*time.Minute, max)
	now := time.Now()
	refused, added0 := 0, 0
	for a := 0; a < 10000; a++ {
		ip := netip.AddrFrom4([4]byte{198, 18, byte(a >> 8), byte(a)})
		for i := 0; i < 10; i++ {
			s := &session{ID: newID(), IP: ip, Created: now}
			if ss.add(s) != added {
				refused++
				continue
			}
			added0++
			if i == 0 {
				if ok, _ := ss.start(s, now); ok {
					ss.release(s, now.Add(time.Second)) // a test that ran to the end
				}
			}
		}
	}
	t.Logf("flood: %d sessions added (one tested to the end per address, the others waiting), %d refused (fair share past half the table), table %d", added0, refused, len(ss.byID))
	if refused == 0 {
		t.Error("the flood got all it asked for")
	}
	customer := &session{ID: newID(), IP: netip.MustParseAddr("203.0.113.99"), Created: now}
	if r := ss.add(customer); r != added {
		t.Fatalf("a new customer was refused: %v (table %d)", r, len(ss.byID))
	}
	if ok, _ := ss.start(customer, now); !ok {
		t.Fatal("a new customer could not start")
	}
	// Fill the table to the brim with sessions that finished: the next
	// customer still gets in (finished sessions make room).
	for i := 0; len(ss.byID) < max; i++ {
		ip := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		s := &session{ID: newID(), IP: ip, Created: now}
		ss.byID[s.ID] = s
		s.started, s.ended, s.ips, s.polled = now, now, map[netip.Addr]bool{}, now
	}
	next := &session{ID: newID(), IP: netip.MustParseAddr("203.0.113.98"), Created: now}
	if r := ss.add(next); r != added {
		t.Fatalf("full table of finished sessions: %v", r)
	}
	t.Logf("after the brim: table %d", len(ss.byID))
}

// TestClaimSecondFamily: a dual-stack check extends its turn to its
// IPv6 address, unless a check from that address is testing.
func TestClaimSecondFamily(t *testing.T) {
	ss := newSessions(10*time.Minute, 1000)
	now := time.Now()
	v4, v6 := netip.MustParseAddr("203.0.113.64"), netip.MustParseAddr("2001:db8:300::40")
	a := &session{ID: newID(), IP: v4, Created: now}
	ss.add(a)
	if ok, _ := ss.start(a, now); !ok {
		t.Fatal("start")
	}
	b := &session{ID: newID(), IP: v6, Created: now}
	ss.add(b)
	if ok, _ := ss.start(b, now); !ok {
		t.Fatal("a v6 session should start while nothing holds v6")
	}
	if ss.claim(a, v6, now) {
		t.Fatal("claimed an address another check is testing from")
	}
	ss.release(b, now.Add(time.Second))
	if !ss.claim(a, v6, now.Add(2*time.Second)) {
		t.Fatal("could not claim a free address")
	}
	if since, ok := a.claimedSince(v6); !ok || !since.Equal(now.Add(2*time.Second)) {
		t.Errorf("claimed since %v %v", since, ok)
	}
	c := &session{ID: newID(), IP: v6, Created: now}
	ss.add(c)
	if ok, _ := ss.start(c, now.Add(3*time.Second)); ok {
		t.Fatal("a v6 session started while a dual-stack check held v6")
	}
	ss.release(a, now.Add(4*time.Second))
	if ok, _ := ss.start(c, now.Add(4*time.Second)); !ok {
		t.Fatal("the v6 session did not start after the dual-stack check ended")
	}
}

// TestShutdownEndsDownProbes holds a server-first probe connection open and
// shuts the server down: Shutdown must close it (not leave its goroutine
// holding it to the 20 s deadline) and return promptly.
func TestShutdownEndsDownProbes(t *testing.T) {
	s, err := New(func() Config {
		cfg := Defaults()
		cfg.HTTPS, cfg.HTTP, cfg.Admin, cfg.Target, cfg.Echo.Listen = "127.0.0.1:0", "", "", "", ""
		cfg.DataDir = t.TempDir()
		cfg.Rungs.First, cfg.Rungs.Last, cfg.Rungs.Step, cfg.Rungs.BasePort = 1220, 1460, 240, 0
		return cfg
	}(), slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Rungs()[0].DownPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("the probe's segment: %v", err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, err = c.Read(buf); err != nil {
			break
		}
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the probe connection is still open after Shutdown")
	}
}
