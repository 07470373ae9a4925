package server

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// registry keeps the records of recent connections by client address, so
// that a page's results can be joined with what the server saw, including
// connections whose handshake never completed (which no request names).
type registry struct {
	mu     sync.Mutex
	byIP   map[netip.Addr][]*connRecord
	bySID  map[string]*connRecord // by the ClientHello's legacy_session_id
	maxAge time.Duration
	perIP  int
}

func newRegistry(maxAge time.Duration, perIP int) *registry {
	return &registry{byIP: map[netip.Addr][]*connRecord{}, bySID: map[string]*connRecord{}, maxAge: maxAge, perIP: perIP}
}

func (r *registry) add(rec *connRecord) {
	ip := rec.Client.Addr()
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.byIP[ip]
	if len(l) >= r.perIP {
		l = append(l[:0:0], l[len(l)-r.perIP+1:]...)
	}
	r.byIP[ip] = append(l, rec)
}

// since returns the records of ip accepted at or after t.
func (r *registry) since(ip netip.Addr, t time.Time) []*connRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*connRecord
	for _, rec := range r.byIP[ip.Unmap()] {
		if !rec.Accepted.Before(t) {
			out = append(out, rec)
		}
	}
	return out
}

// indexHello files rec under its ClientHello's session ID (empty IDs and
// the all-zero one are shared by many clients and not filed).
func (r *registry) indexHello(sid string, rec *connRecord) {
	if len(sid) < 16 || strings.Trim(sid, "0") == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bySID) < 1<<20 {
		r.bySID[sid] = rec
	}
}

// bySession returns the record whose ClientHello carried sid.
func (r *registry) bySession(sid string) *connRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bySID[sid]
}

// sweep forgets records older than maxAge.
func (r *registry) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for sid, rec := range r.bySID {
		if now.Sub(rec.Accepted) >= r.maxAge {
			delete(r.bySID, sid)
		}
	}
	for ip, l := range r.byIP {
		keep := l[:0]
		for _, rec := range l {
			if now.Sub(rec.Accepted) < r.maxAge {
				keep = append(keep, rec)
			}
		}
		if len(keep) == 0 {
			delete(r.byIP, ip)
			continue
		}
		r.byIP[ip] = keep
	}
}

// size returns the number of addresses tracked.
func (r *registry) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byIP)
}
