package server

import (
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Per-address test leases. People behind one NAT share an address, and a
// browser controls nothing below HTTP: the connections of a handshake that
// never completed name no session. So the server lets one session of an
// address test at a time (the lease) and queues the others in order; a
// connection from the address accepted while a session holds the lease
// belongs to that session, and the join takes nothing else untagged.
const (
	// leaseMax bounds one session's test: the page's steps time out after
	// at most 10 s each, three in a row, plus the refinement round.
	leaseMax = 45 * time.Second
	// queueIdle drops a waiting session whose page stopped asking.
	queueIdle = 10 * time.Second
	// maxQueued bounds the sessions waiting per address (and per /64),
	// maxQueuedBusy once the session table is half full.
	maxQueued     = 64
	maxQueuedBusy = 4
)

// session is one run of the page: created when the page starts, finished
// when it posts its results.
type session struct {
	ID      string
	IP      netip.Addr
	Family  int
	SYNMSS  int
	Created time.Time
	UA      string
	// Host and Local are what the page was opened at: the Host header's
	// name and the server address the connection reached.
	Host  string
	Local netip.Addr
	// Plain says the page measures over plain HTTP: it was opened over
	// http:// and the server's certificate is the self-signed one, which
	// no browser trusts.
	Plain bool

	// postMu serializes result posts: a result posted twice stores one report.
	postMu sync.Mutex

	mu       sync.Mutex
	ips      map[netip.Addr]bool // addresses whose requests named the session
	reportID string
	tests    int       // test requests counted against the session's budget
	started  time.Time // the lease was granted (zero: waiting)
	ended    time.Time // the lease was given back (zero: still held)
	polled   time.Time // the page last asked to start
	refine   *refinement
	// claimed are the other addresses (keys) whose lease the session
	// also holds, with the time each was claimed: a dual-stack check's
	// second family.
	claimed map[netip.Addr]time.Time
}

func (s *session) addIP(ip netip.Addr) {
	s.mu.Lock()
	if len(s.ips) < 8 {
		s.ips[ip.Unmap()] = true
	}
	s.mu.Unlock()
}

func (s *session) addrs() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []netip.Addr{s.IP}
	for ip := range s.ips {
		if ip != s.IP {
			out = append(out, ip)
		}
	}
	return out
}

// window returns the span of the session's lease: connections from its
// address accepted inside it are its own. ok is false before the lease.
func (s *session) window() (from, to time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	to = s.started.Add(leaseMax)
	if !s.ended.IsZero() && s.ended.Before(to) {
		to = s.ended
	}
	return s.started, to, true
}

// holding reports whether the session holds its lease at now.
func (s *session) holding(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.started.IsZero() && s.ended.IsZero() && now.Before(s.started.Add(leaseMax))
}

// sessions holds the sessions of the last minutes, capped in number, and
// the per-address leases and queues.
type sessions struct {
	mu     sync.Mutex
	byID   map[string]*session
	leases map[netip.Addr]*session
	queues map[netip.Addr][]*session
	maxAge time.Duration
	max    int
	// lastEvict is when an evictLocked scan last freed nothing.
	lastEvict time.Time
}

func newSessions(maxAge time.Duration, max int) *sessions {
	return &sessions{byID: map[string]*session{}, leases: map[netip.Addr]*session{},
		queues: map[netip.Addr][]*session{}, maxAge: maxAge, max: max}
}

// errQueueFull and errTableFull say why add refused a session.
type addRefusal int

const (
	added addRefusal = iota
	queueFull
	tableFull
)

// add registers s and queues it for its address's lease.
func (ss *sessions) add(s *session) addRefusal {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	if len(ss.byID) >= ss.max {
		ss.evictLocked(now)
		if len(ss.byID) >= ss.max {
			return tableFull
		}
	}
	k := addrKey(s.IP)
	q := ss.pruneLocked(k, now)
	// Fair shares: once the table is half full, one address (one /64) may
	// keep only a few sessions waiting, so a flood from many addresses
	// leaves room for the next customer.
	limit := maxQueued
	if len(ss.byID) >= ss.max/2 {
		limit = maxQueuedBusy
	}
	if len(q) >= limit {
		return queueFull
	}
	s.ips = map[netip.Addr]bool{}
	s.polled = now
	ss.byID[s.ID] = s
	ss.queues[k] = append(q, s)
	return added
}

// pruneLocked drops waiting sessions whose page went away, and returns the
// address's queue.
func (ss *sessions) pruneLocked(k netip.Addr, now time.Time) []*session {
	q := ss.queues[k][:0:0]
	for _, w := range ss.queues[k] {
		w.mu.Lock()
		idle := now.Sub(w.polled) > queueIdle
		w.mu.Unlock()
		if !idle {
			q = append(q, w)
		}
	}
	if len(q) == 0 {
		delete(ss.queues, k)
	} else {
		ss.queues[k] = q
	}
	return q
}

// start grants s the lease of its address when no other session holds it
// and s is first in line; otherwise it returns s's place in the queue
// (1: next).
func (ss *sessions) start(s *session, now time.Time) (bool, int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.mu.Lock()
	s.polled = now
	started := !s.started.IsZero()
	s.mu.Unlock()
	if started {
		return true, 0
	}
	k := addrKey(s.IP)
	if h := ss.leases[k]; h != nil && h.holding(now) {
		for i, w := range ss.pruneLocked(k, now) {
			if w == s {
				return false, i + 1
			}
		}
		return false, maxQueued
	}
	q := ss.pruneLocked(k, now)
	if len(q) == 0 || q[0] != s {
		for i, w := range q {
			if w == s {
				return false, i
			}
		}
		return false, maxQueued
	}
	ss.queues[k] = q[1:]
	if len(q) == 1 {
		delete(ss.queues, k)
	}
	ss.leases[k] = s
	s.mu.Lock()
	s.started = now
	s.mu.Unlock()
	return true, 0
}

// claim extends s's lease to another address of the client (the second
// family of a dual-stack check), from now on, when no other session of
// that address is testing. It reports whether s holds that address.
func (ss *sessions) claim(s *session, ip netip.Addr, now time.Time) bool {
	k := addrKey(ip)
	if k == addrKey(s.IP) {
		return true
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !s.holding(now) {
		return false
	}
	if h := ss.leases[k]; h != nil && h != s && h.holding(now) {
		return false
	}
	if len(ss.queues[k]) > 0 && ss.leases[k] != s {
		return false // that address's own sessions wait in line: they go first
	}
	ss.leases[k] = s
	s.mu.Lock()
	if s.claimed == nil {
		s.claimed = map[netip.Addr]time.Time{}
	}
	if _, ok := s.claimed[k]; !ok && len(s.claimed) < 4 {
		s.claimed[k] = now
	}
	s.mu.Unlock()
	return true
}

// claimedSince returns when s claimed the address's lease (ok false: never).
func (s *session) claimedSince(ip netip.Addr) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.claimed[addrKey(ip)]
	return t, ok
}

// release gives the lease back (the session posted its result).
func (ss *sessions) release(s *session, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.mu.Lock()
	if !s.started.IsZero() && s.ended.IsZero() {
		s.ended = now
	}
	s.mu.Unlock()
	k := addrKey(s.IP)
	if ss.leases[k] == s {
		delete(ss.leases, k)
	}
	s.mu.Lock()
	for c := range s.claimed {
		if ss.leases[c] == s {
			delete(ss.leases, c)
		}
	}
	s.mu.Unlock()
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.byID[id]
}

func (ss *sessions) sweep(now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweepLocked(now)
}

// evictLocked makes room in a full table: besides what sweep drops, the
// sessions whose test is over (their report stored, or their lease run
// out) go, oldest first, a tenth of the table at a time; they are kept
// only to answer a result posted twice. A scan that freed nothing is not
// repeated within a second, so a flood of requests against a table full
// of live sessions cannot make every one of them scan it.
func (ss *sessions) evictLocked(now time.Time) {
	if now.Sub(ss.lastEvict) < time.Second {
		return // the last scan found nothing to evict
	}
	ss.sweepLocked(now)
	var over []*session
	for _, s := range ss.byID {
		s.mu.Lock()
		done := !s.started.IsZero() && (!s.ended.IsZero() || now.Sub(s.started) > leaseMax)
		s.mu.Unlock()
		if done {
			over = append(over, s)
		}
	}
	sort.Slice(over, func(i, j int) bool { return over[i].Created.Before(over[j].Created) })
	for _, s := range over[:min(len(over), max(ss.max/10, 1))] {
		delete(ss.byID, s.ID)
	}
	if len(ss.byID) >= ss.max {
		ss.lastEvict = now
	}
}

func (ss *sessions) sweepLocked(now time.Time) {
	for id, s := range ss.byID {
		s.mu.Lock()
		waiting := s.started.IsZero() && now.Sub(s.polled) > queueIdle
		s.mu.Unlock()
		if now.Sub(s.Created) > ss.maxAge || waiting {
			delete(ss.byID, id)
		}
	}
	for k, h := range ss.leases {
		if !h.holding(now) {
			delete(ss.leases, k)
		}
	}
	for k := range ss.queues {
		ss.pruneLocked(k, now)
	}
}
