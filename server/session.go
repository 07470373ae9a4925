package server

import (
	"net/netip"
	"sync"
	"time"
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

	mu       sync.Mutex
	ips      map[netip.Addr]bool // addresses whose requests named the session
	reportID string
	finished chan struct{}
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

// sessions holds the sessions of the last minutes, capped in number.
type sessions struct {
	mu     sync.Mutex
	byID   map[string]*session
	maxAge time.Duration
	max    int
}

func newSessions(maxAge time.Duration, max int) *sessions {
	return &sessions{byID: map[string]*session{}, maxAge: maxAge, max: max}
}

// add registers s, or reports false when the table is full.
func (ss *sessions) add(s *session) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.byID) >= ss.max {
		ss.sweepLocked(time.Now())
		if len(ss.byID) >= ss.max {
			return false
		}
	}
	s.ips = map[netip.Addr]bool{}
	s.finished = make(chan struct{})
	ss.byID[s.ID] = s
	return true
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

func (ss *sessions) sweepLocked(now time.Time) {
	for id, s := range ss.byID {
		if now.Sub(s.Created) > ss.maxAge {
			delete(ss.byID, id)
		}
	}
}
