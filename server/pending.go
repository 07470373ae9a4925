package server

import (
	"container/list"
	"net/netip"
	"sync"
)

// maxPendingPerAddr bounds the connections of one address (one /64 for
// IPv6) that have not finished a TLS handshake, or that hold a server-first
// probe: each costs buffers (crypto/tls keeps up to 64 KB of an unfinished
// handshake message), and a flood from one address must neither grow the
// server without bound nor take the probes from everyone else. One page
// run keeps about a hundred open at its peak.
const maxPendingPerAddr = 256

// pendingConns counts those connections per address and in all. Past the
// per-address bound a new connection is refused; past the global bound
// (max, below the descriptor limit: pendingBound) the oldest unfinished
// connection is closed to make room, so that a flood from many addresses
// neither exhausts the process's descriptors nor keeps a new customer
// waiting in the listen queue: a customer's handshake takes well under a
// second, a flood's connections wait for the handshake timeout.
type pendingConns struct {
	mu    sync.Mutex
	by    map[netip.Addr]int
	order list.List // of *pendingConn, oldest first
	max   int       // 0: no global bound
}

// pendingConn is one counted connection: release it when it finishes or
// closes (again: no effect).
type pendingConn struct {
	key   netip.Addr
	el    *list.Element
	close func() // closes the connection, when shed
}

// acquire counts a new connection from ip, or refuses it (nil) when its
// address holds its bound. When the global bound is reached the oldest
// connections are shed: their close runs before acquire returns, and
// shed says how many.
func (p *pendingConns) acquire(ip netip.Addr) (pc *pendingConn, shed int) {
	k := addrKey(ip)
	p.mu.Lock()
	if p.by == nil {
		p.by = map[netip.Addr]int{}
	}
	if p.by[k] >= maxPendingPerAddr {
		p.mu.Unlock()
		return nil, 0
	}
	var olds []*pendingConn
	for p.max > 0 && p.order.Len() >= p.max {
		old := p.order.Front().Value.(*pendingConn)
		p.removeLocked(old)
		olds = append(olds, old)
	}
	pc = &pendingConn{key: k}
	pc.el = p.order.PushBack(pc)
	p.by[k]++
	p.mu.Unlock()
	for _, old := range olds {
		if old.close != nil {
			old.close()
		}
	}
	return pc, len(olds)
}

// setClose says how to close pc's connection when it is shed; when it
// already was (between acquire and now), close runs at once.
func (p *pendingConns) setClose(pc *pendingConn, close func()) {
	p.mu.Lock()
	pc.close = close
	shed := pc.el == nil
	p.mu.Unlock()
	if shed {
		close()
	}
}

// setMax sets the global bound (0: none).
func (p *pendingConns) setMax(n int) {
	p.mu.Lock()
	p.max = n
	p.mu.Unlock()
}

// release stops counting pc.
func (p *pendingConns) release(pc *pendingConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removeLocked(pc)
}

func (p *pendingConns) removeLocked(pc *pendingConn) {
	if pc.el == nil {
		return
	}
	p.order.Remove(pc.el)
	pc.el = nil
	if p.by[pc.key] <= 1 {
		delete(p.by, pc.key)
	} else {
		p.by[pc.key]--
	}
}

// count returns the connections counted for ip's address and in all.
func (p *pendingConns) count(ip netip.Addr) (addr, all int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.by[addrKey(ip)], p.order.Len()
}

// pendingBound is the global bound of unfinished connections for a
// descriptor limit of nofile with fixed descriptors in use (listeners,
// the refinement pool, the database): half of what is left after those
// and a margin of 64, the other half for finished connections; at least
// 64. Without a known limit: 1<<16.
func pendingBound(nofile, fixed int) int {
	if nofile <= 0 {
		return 1 << 16
	}
	return max(64, (nofile-fixed-64)/2)
}
