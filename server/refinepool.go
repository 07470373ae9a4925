package server

import (
	"net/netip"
	"sync"
	"time"
)

// portPool hands out the refinement ports round the pool, and lends a
// port again only portQuarantine after it was given back: a browser that
// learned a session's ports (Chromium preconnects at the next page load to
// origins it saw) must not reach another session's listener on them.
//
// Fair shares: one client address (addrKey: an IPv6 /64) holds at most
// share() ports, counting those it gave back that are still in
// quarantine (a client that finishes and starts again at once does not
// get around it): two sessions' worth while at most half the pool is
// taken, one session's worth beyond; and once fewer than a quarter of the
// ports are free, only addresses that hold none may take them, so that
// the next customer finds some. Every session must also have run a real
// first round (refineSession lends only then).
type portPool struct {
	mu       sync.Mutex
	base     int // 0: any free port (tests); the pool still counts n slots
	n        int
	next     int
	holder   map[int]netip.Addr // slot: the address holding it, or that gave it back last
	used     map[int]bool
	released map[int]time.Time
	now      func() time.Time
}

// portLease is the ports one take returned.
type portLease struct {
	key   netip.Addr
	slots []int
	Ports []int
}

const portQuarantine = time.Minute

// maxSessionPorts is the most one session asks for: per family, one port
// per size inside the upstream bracket and one for the downstream writes.
const maxSessionPorts = 2 * (maxRefineSizes + 1)

func newPortPool(base, n int) *portPool {
	return &portPool{base: base, n: n, holder: map[int]netip.Addr{}, used: map[int]bool{}, released: map[int]time.Time{}, now: time.Now}
}

// share is the most ports one address may hold: two sessions' worth (an
// office behind one address checking twice within the quarantine), or a
// sixteenth of a larger pool; once more than half the pool is taken, one
// session's worth.
func (p *portPool) share(free int) int {
	if p.n-free > p.n/2 {
		return maxSessionPorts
	}
	return max(2*maxSessionPorts, p.n/16)
}

// take lends k ports to client, or returns nil when its share, the
// reserve or the free ports do not allow it. With base 0 the ports are
// zeros: any free port.
func (p *portPool) take(client netip.Addr, k int) *portLease {
	p.mu.Lock()
	defer p.mu.Unlock()
	key, now := addrKey(client), p.now()
	held, free := 0, 0
	var out []int
	for i := 0; i < p.n; i++ {
		slot := (p.next + i) % p.n
		quarantined := p.base != 0 && now.Sub(p.released[slot]) < portQuarantine
		if h, ok := p.holder[slot]; ok && h == key && (p.used[slot] || quarantined) {
			held++
		}
		if p.used[slot] || quarantined {
			continue
		}
		free++
		if len(out) < k {
			out = append(out, slot)
		}
	}
	if len(out) < k || held+k > p.share(free) || (held > 0 && free-k < p.n/4) {
		return nil
	}
	l := &portLease{key: key, slots: out}
	for _, slot := range out {
		p.used[slot], p.holder[slot] = true, key
		port := 0
		if p.base != 0 {
			port = p.base + slot
		}
		l.Ports = append(l.Ports, port)
	}
	p.next = (out[len(out)-1] + 1) % p.n
	return l
}

// put gives a lease's ports back; they stay counted against its address
// while in quarantine.
func (p *portPool) put(l *portLease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	for _, slot := range l.slots {
		delete(p.used, slot)
		p.released[slot] = now
	}
}
