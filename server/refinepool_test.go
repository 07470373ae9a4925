package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
)

// claimBracket runs a session from the client's address up to its refine
// request, with the page's results claiming the two lower rungs passed and
// the upper ones lost. With connect, the claim is backed by real
// connections: the hello on the passing rungs, a connection that sends
// nothing on the others (a ClientHello lost on the way). It returns the
// number of refinement ports lent.
func claimBracket(t *testing.T, s *Server, c *http.Client, connect bool) int {
	t.Helper()
	code, body := do(t, c, "POST", s.url("https", "/api/v1/sessions"), "application/json", strings.NewReader(`{"rtt_ms":1}`))
	if code != http.StatusCreated {
		t.Fatalf("session: %d %s", code, body)
	}
	var sess api.Session
	decode(t, body, &sess)
	var rungs []api.BrowserRung
	for i, r := range sess.Rungs {
		br := api.BrowserRung{MSS: r.MSS, Family: 4, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK}
		if i >= 2 {
			br.Hello, br.Down, br.Up = api.StepFail, api.StepFail, api.StepFail
		}
		if connect && i < 2 {
			if code, _ := do(t, c, "GET", s.rungURL(r, "/t/hello?s="+sess.ID), "", nil); code != 200 {
				t.Fatalf("hello on rung %d: %d", r.MSS, code)
			}
		}
		if connect && i >= 2 {
			bc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port))
			if err != nil {
				t.Fatal(err)
			}
			defer bc.Close()
		}
		rungs = append(rungs, br)
	}
	time.Sleep(100 * time.Millisecond) // the server accepts the bare connections
	b, _ := jsonBody(api.PageResult{Rungs: rungs, RTTms: 1})
	code, body = do(t, c, "POST", s.url("https", "/api/v1/sessions/"+sess.ID+"/refine"), "application/json", b)
	if code != http.StatusOK {
		t.Fatalf("refine: %d %s", code, body)
	}
	var ref api.Refinement
	decode(t, body, &ref)
	ports := 0
	for _, f := range ref.Families {
		ports += len(f.Rungs)
		if f.ExactPort != 0 {
			ports++
		}
	}
	// Give the lease back, as the page does with its result.
	b, _ = jsonBody(api.PageResult{Rungs: rungs, RTTms: 1})
	do(t, c, "POST", s.url("https", "/api/v1/sessions/"+sess.ID+"/result"), "application/json", b)
	return ports
}

// TestRefineNeedsConnections: the refinement ports are lent only to a
// session whose first round the server saw: a completed handshake at the
// largest size that passed and a connection at the smallest lost. A page
// result claiming a bracket without a connection got 9 ports.
func TestRefineNeedsConnections(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	claimed := claimBracket(t, s, c, false)
	real := claimBracket(t, s, c, true)
	t.Logf("ports lent: %d to a claimed bracket without connections, %d to one the server saw", claimed, real)
	if claimed != 0 {
		t.Errorf("%d ports lent to a session that made no connection", claimed)
	}
	if real == 0 {
		t.Error("no ports lent to a session whose first round the server saw")
	}
}

// TestPortPoolFairShare: ten addresses and 39 addresses of one /64,
// each taking a session's worth of ports, giving them back and taking
// again as fast as they can, leave ports for a bystander every time.
// (Before: ten addresses took every port, and a bystander got none in 12
// of 20 tries.)
func TestPortPoolFairShare(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPortPool(9600, 400)
	p.now = func() time.Time { return now }
	var attackers []netip.Addr
	for i := 0; i < 10; i++ {
		attackers = append(attackers, netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", i+1)))
	}
	for i := 0; i < 39; i++ {
		attackers = append(attackers, netip.MustParseAddr(fmt.Sprintf("2001:db8:64:1::%x", i+1)))
	}
	held := map[netip.Addr][]*portLease{}
	peak := map[netip.Addr]int{} // the most ports each key held at once
	refused, tries := 0, 0
	for round := 0; round < 240; round++ {
		now = now.Add(time.Second)
		for _, a := range attackers {
			// Give back what was held a few rounds, take again at once.
			if ls := held[a]; len(ls) > 0 && round%3 == 0 {
				p.put(ls[0])
				held[a] = ls[1:]
			}
			for {
				l := p.take(a, maxSessionPorts)
				if l == nil {
					break
				}
				held[a] = append(held[a], l)
			}
		}
		for k, n := range holding(held) {
			peak[k] = max(peak[k], n)
		}
		if round%12 == 11 {
			tries++
			by := netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", tries))
			l := p.take(by, maxSessionPorts)
			if l == nil {
				refused++
				continue
			}
			p.put(l)
		}
	}
	t.Logf("10 addresses and a /64 of 39 cycling sessions of %d ports through a pool of %d (share %d each, less when busy): "+
		"a bystander refused in %d of %d tries; the /64 held at most %d", maxSessionPorts, p.n, p.share(p.n), refused, tries,
		peak[addrKey(attackers[10])])
	if refused > 0 {
		t.Errorf("a bystander got no ports in %d of %d tries", refused, tries)
	}
	for k, n := range peak {
		if n > p.share(p.n) {
			t.Errorf("%s holds %d ports, more than its share %d", k, n, p.share(p.n))
		}
	}
}

// holding sums the ports each address key holds.
func holding(held map[netip.Addr][]*portLease) map[netip.Addr]int {
	out := map[netip.Addr]int{}
	for a, ls := range held {
		for _, l := range ls {
			out[addrKey(a)] += len(l.Ports)
		}
	}
	return out
}

// TestPortPoolOffice: an office behind one address checks twice within
// the quarantine, each check with both brackets: both get their ports
// (TestOfficeInBrowser's second round did not with a share of 25), a
// third within the minute does not.
func TestPortPoolOffice(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPortPool(9600, 400)
	p.now = func() time.Time { return now }
	office := netip.MustParseAddr("203.0.113.50")
	for i := 0; i < 2; i++ {
		l := p.take(office, maxSessionPorts)
		if l == nil {
			t.Fatalf("check %d: no ports", i+1)
		}
		p.put(l)
		now = now.Add(5 * time.Second)
	}
	if l := p.take(office, maxSessionPorts); l != nil {
		t.Errorf("a third check within the quarantine got %d ports, want none (share %d)", len(l.Ports), p.share(p.n))
	}
	now = now.Add(portQuarantine)
	if l := p.take(office, maxSessionPorts); l == nil {
		t.Error("no ports after the quarantine")
	}
}
