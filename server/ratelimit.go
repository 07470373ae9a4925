package server

import (
	"net/netip"
	"sync"
	"time"
)

// addrKey is the key of every per-address limit and queue (rate limits,
// sessions and their leases, operator token failures, unfinished
// connections, refinement ports): the address itself for IPv4, its /64
// for IPv6 (one network, however many of its addresses it uses).
func addrKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// limiter is a token bucket per client address (addrKey: an IPv6 /64 is
// one address): rate tokens a second, at most burst at once. Buckets idle for long are forgotten, and the number
// of addresses tracked is capped so a flood of sources cannot grow it
// without bound (past the cap, new sources share one bucket).
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[netip.Addr]*bucket
	max     int
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[netip.Addr]*bucket{}, max: 100000, now: time.Now}
}

// allow takes one token for addr, or reports that there is none.
func (l *limiter) allow(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	addr = addrKey(addr)
	b := l.buckets[addr]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.sweepLocked(now)
			if len(l.buckets) >= l.max {
				addr = netip.Addr{} // the overflow bucket
			}
		}
		if b = l.buckets[addr]; b == nil {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[addr] = b
		}
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets full buckets.
func (l *limiter) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
}

func (l *limiter) sweepLocked(now time.Time) {
	for a, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, a)
		}
	}
}

// exhausted reports whether addr has no token left, without taking one.
func (l *limiter) exhausted(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addrKey(addr)]
	if b == nil {
		return false
	}
	return min(l.burst, b.tokens+l.now().Sub(b.last).Seconds()*l.rate) < 1
}
