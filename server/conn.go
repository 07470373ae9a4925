package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mtuscope/mtuscope/sockopt"
	"github.com/mtuscope/mtuscope/tlswire"
)

// Listener kinds: what a listener is for, which decides what its
// connections tell the diagnosis.
const (
	kindPage = "page" // the page, the API, whoami: clamped to the page MSS
	kindRung = "rung" // HTTPS at one MSS: handshake, download, upload
	kindDown = "down" // server speaks first: one full-size segment at one MSS
	// kindExact: server speaks first, unclamped: segments of exact sizes,
	// smallest first, for one session's refinement round.
	kindExact = "exact"
)

// connRecord is what the server saw of one accepted connection. Its fields
// after mu are guarded by mu.
type connRecord struct {
	ID       uint64
	Kind     string
	MSS      int // the listener's clamp, 0 for none
	Client   netip.AddrPort
	Local    netip.AddrPort
	Accepted time.Time
	SYNMSS   int
	raw      syscall.RawConn
	// handshakeFlag mirrors handshakeDone for the write path, which then
	// takes no lock.
	handshakeFlag atomic.Bool

	mu            sync.Mutex
	session       string
	hello         helloSniffer
	handshakeDone bool
	flightBytes   int64 // written before the handshake was done
	downWritten   int   // bytes of the server-first probe segment
	exactSizes    []int // kindExact: the IP packet sizes written, in order
	exactEnds     []int64
	closed        bool
	certAlert     string // the client refused the certificate with this TLS alert
	// resetAfter is when, after Accepted, a read found the connection
	// reset (ECONNRESET) before the server closed it: an RST the server
	// did not send; 0 when none.
	resetAfter  time.Duration
	final       TCPInfo       // at close
	pending     *pendingConns // holds pendingSlot there until done or closed
	pendingSlot *pendingConn
}

// snapshot is a copy of a connRecord at one moment, with TCP_INFO read then.
type snapshot struct {
	Kind          string    `json:"kind"`
	MSS           int       `json:"mss"`
	Accepted      time.Time `json:"accepted"`
	SYNMSS        int       `json:"syn_mss"`
	Session       string    `json:"-"`
	HelloExpected int       `json:"hello_bytes,omitempty"`
	HelloGot      int       `json:"hello_got,omitempty"`
	HelloHash     string    `json:"hello_sha256,omitempty"`
	HelloRecords  int       `json:"hello_record_bytes,omitempty"`
	RecordHash    string    `json:"hello_record_sha256,omitempty"`
	HelloSID      string    `json:"-"`
	NotTLS        bool      `json:"not_tls,omitempty"`
	// HelloUnread says the sniffer stopped copying (its memory budget was
	// spent): a hello without a hash then says nothing about the path.
	HelloUnread   bool `json:"hello_unread,omitempty"`
	HandshakeDone bool `json:"handshake_done"`
	// CertAlert is the TLS alert with which the client refused the
	// server's certificate ("unknown certificate authority", ...).
	CertAlert string `json:"cert_alert,omitempty"`
	// ResetMs is when (ms after the accept) the server's socket was found
	// reset by an RST it did not send, before it closed the connection;
	// Reset says it was. HelloFeatures is what the hello, or the part
	// that arrived, carried.
	Reset         bool                   `json:"reset_by_peer,omitempty"`
	ResetMs       int64                  `json:"reset_ms,omitempty"`
	HelloFeatures *tlswire.HelloFeatures `json:"hello_features,omitempty"`
	FlightBytes   int64                  `json:"flight_bytes,omitempty"`
	DownWritten   int                    `json:"down_written,omitempty"`
	// ExactSizes are the IP packet sizes an exact-size probe wrote, in
	// order, and ExactEnds the stream offset at the end of each.
	ExactSizes []int   `json:"exact_sizes,omitempty"`
	ExactEnds  []int64 `json:"exact_ends,omitempty"`
	Closed     bool    `json:"closed"`
	Info       TCPInfo `json:"tcp_info"`
}

func (r *connRecord) snapshot() snapshot {
	r.mu.Lock()
	s := snapshot{
		Kind: r.Kind, MSS: r.MSS, Accepted: r.Accepted, SYNMSS: r.SYNMSS, Session: r.session,
		HelloExpected: r.hello.Expected, HelloGot: r.hello.Got(), HelloHash: r.hello.Hash,
		HelloRecords: r.hello.Records, RecordHash: r.hello.RecordHash, HelloSID: r.hello.SessionID, NotTLS: r.hello.NotTLS, HelloUnread: r.hello.Truncated, HandshakeDone: r.handshakeDone,
		FlightBytes: r.flightBytes, DownWritten: r.downWritten, Closed: r.closed, Info: r.final, CertAlert: r.certAlert,
		ExactSizes: r.exactSizes, ExactEnds: r.exactEnds,
		Reset: r.resetAfter > 0, ResetMs: r.resetAfter.Milliseconds(),
	}
	if f := r.hello.Features; f.Size > 0 {
		s.HelloFeatures = &f
	}
	r.mu.Unlock()
	if !s.Closed {
		if ti, err := sockopt.ReadTCPInfo(r.raw); err == nil {
			s.Info = ti
		}
	}
	return s
}

func (r *connRecord) setSession(id string) {
	r.mu.Lock()
	if r.session == "" {
		r.session = id
	}
	r.mu.Unlock()
}

func (r *connRecord) markHandshakeDone() {
	r.mu.Lock()
	r.handshakeDone = true
	r.handshakeFlag.Store(true)
	p, slot := r.pending, r.pendingSlot
	if r.Kind != kindDown && r.Kind != kindExact {
		r.pending = nil
	} else {
		p = nil
	}
	r.mu.Unlock()
	if p != nil {
		p.release(slot)
	}
}

// evConn is an accepted connection that records what crossed it.
type evConn struct {
	net.Conn
	rec       *connRecord
	reg       *registry
	closeOnce sync.Once
	onClose   func()
	// helloDone is set once the record's hello sniffer is done: reads
	// after that (the whole rest of the connection) take no lock.
	helloDone atomic.Bool
}

func (c *evConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.noteReset(err)
	if n > 0 && !c.helloDone.Load() {
		sid := ""
		c.rec.mu.Lock()
		if !c.rec.hello.Done {
			c.rec.hello.Feed(p[:n])
			sid = c.rec.hello.SessionID
		}
		if c.rec.hello.Done {
			c.helloDone.Store(true)
		}
		c.rec.mu.Unlock()
		if sid != "" && c.reg != nil {
			c.reg.indexHello(sid, c.rec)
		}
	}
	return n, err
}

// noteReset records a read error that says the connection was reset
// (ECONNRESET) while the server still held it open: an RST it did not send.
func (c *evConn) noteReset(err error) {
	if err == nil || !errors.Is(err, syscall.ECONNRESET) {
		return
	}
	c.rec.mu.Lock()
	if !c.rec.closed && c.rec.resetAfter == 0 {
		c.rec.resetAfter = max(time.Since(c.rec.Accepted), time.Nanosecond)
	}
	c.rec.mu.Unlock()
}

func (c *evConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if !c.rec.handshakeFlag.Load() {
		c.rec.mu.Lock()
		if !c.rec.handshakeDone {
			c.rec.flightBytes += int64(n)
		}
		c.rec.mu.Unlock()
	}
	return n, err
}

// Close keeps the connection's last TCP_INFO, then closes it.
func (c *evConn) Close() error {
	c.closeOnce.Do(func() {
		ti, err := sockopt.ReadTCPInfo(c.rec.raw)
		c.rec.mu.Lock()
		if err == nil {
			c.rec.final = ti
		}
		c.rec.closed = true
		c.rec.hello.Release() // a half-sent hello's buffers go with the connection
		p, slot := c.rec.pending, c.rec.pendingSlot
		c.rec.pending = nil
		c.rec.mu.Unlock()
		if p != nil {
			p.release(slot)
		}
		if c.onClose != nil {
			c.onClose()
		}
	})
	return c.Conn.Close()
}

// recordOf returns the record behind a connection the HTTP server holds.
func recordOf(c net.Conn) *connRecord {
	if mc, ok := c.(*mixedConn); ok {
		c = mc.Conn
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if ec, ok := c.(*evConn); ok {
		return ec.rec
	}
	return nil
}

var connIDs atomic.Uint64

// evListener wraps a TCP listener: every accepted connection gets a
// record in the registry, with the MSS its SYN advertised.
type evListener struct {
	net.Listener
	kind string
	mss  int
	reg  *registry
	// metrics, when set, counts accepted connections.
	metrics *metrics
	// onAccept, when set, takes over the connection (the down probe) in a
	// goroutine counted in wg; Accept then does not return it. When stopped
	// ends, the connection is closed rather than held to its deadline.
	onAccept func(*evConn)
	wg       *sync.WaitGroup
	stopped  context.Context
	// pending, when set, bounds the unfinished connections per address
	// (past the bound a new one is closed at once) and in all (past that
	// the oldest is closed).
	pending *pendingConns
}

func (l *evListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var slot *pendingConn
		if l.pending != nil {
			ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
			if err == nil {
				var shed int
				if slot, shed = l.pending.acquire(ap.Addr()); slot == nil {
					if l.metrics != nil {
						l.metrics.limited.WithLabelValues("connections").Inc()
					}
					c.Close()
					continue
				}
				if shed > 0 && l.metrics != nil {
					l.metrics.limited.WithLabelValues("shed").Add(float64(shed))
				}
			}
		}
		ec := l.wrap(c)
		if slot != nil {
			ec.rec.pending, ec.rec.pendingSlot = l.pending, slot
			l.pending.setClose(slot, func() { ec.Close() })
		}
		if l.onAccept != nil {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				unwatch := context.AfterFunc(l.stopped, func() { ec.Close() })
				defer unwatch()
				l.onAccept(ec)
			}()
			continue
		}
		return ec, nil
	}
}

func (l *evListener) wrap(c net.Conn) *evConn {
	rec := &connRecord{ID: connIDs.Add(1), Kind: l.kind, MSS: l.mss, Accepted: time.Now()}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		rec.Client = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		rec.Local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if tc, ok := c.(syscall.Conn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			rec.raw = raw
			if syn, err := savedSYN(raw); err == nil {
				rec.SYNMSS, _ = synMSS(syn)
			}
		}
	}
	if rec.raw == nil {
		rec.raw = noRaw{}
	}
	l.reg.add(rec)
	if l.metrics != nil {
		l.metrics.conns.WithLabelValues(l.kind).Inc()
	}
	return &evConn{Conn: c, rec: rec, reg: l.reg}
}

// noRaw stands in for connections without a socket (tests over pipes).
type noRaw struct{}

func (noRaw) Control(func(fd uintptr)) error    { return syscall.EINVAL }
func (noRaw) Read(func(fd uintptr) bool) error  { return syscall.EINVAL }
func (noRaw) Write(func(fd uintptr) bool) error { return syscall.EINVAL }
