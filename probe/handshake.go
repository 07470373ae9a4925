package probe

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/tlswire"
)

// Handshake kinds.
const (
	KindBaseline = "baseline" // small hello at the floor MSS: does TLS work at all
	KindSmall    = "small"    // small hello: tests the server's flight (downstream)
	KindLarge    = "large"    // hello larger than a segment: tests upstream
	KindSweep    = "sweep"    // hello of a set size at a safe MSS
	KindDownload = "download" // full handshake plus an HTTP request: more downstream bytes
)

// Handshake is the evidence of one TLS handshake attempt.
type Handshake struct {
	Kind string `json:"kind"`
	// MSS is the TCP_MAXSEG set before connect, 0 for none.
	MSS        int    `json:"mss"`
	HelloBytes int    `json:"hello_bytes"`
	SessionID  string `json:"-"`
	helloSHA   string
	// Outcome is how the attempt ended; Up and Down what it showed for each
	// direction at UpSize and DownSize (IP packet bytes).
	Outcome  diagnose.Outcome `json:"outcome"`
	Up       diagnose.Result  `json:"up"`
	Down     diagnose.Result  `json:"down"`
	UpSize   int              `json:"up_size"`
	DownSize int              `json:"down_size"`
	// From TCP_INFO at the end: payload bytes per segment sent and the
	// largest received, segments unacknowledged, retransmissions, and the
	// kernel's path MTU.
	SndMSS  int `json:"snd_mss"`
	RcvMSS  int `json:"rcv_mss"`
	Unacked int `json:"unacked"`
	Retrans int `json:"retrans"`
	PMTU    int `json:"pmtu"`
	// OOOPackets counts the server's packets that arrived beyond a gap:
	// the tail of a flight whose full-size head was lost.
	OOOPackets int `json:"ooo_packets,omitempty"`
	// FlightBytes is what the server sent of its first flight; FlightDone
	// says whether its last message arrived.
	FlightBytes int    `json:"flight_bytes"`
	TLSVersion  string `json:"tls_version,omitempty"`
	Group       string `json:"group,omitempty"`
	Detail      string `json:"detail,omitempty"`
	// Retried marks an attempt that proved nothing (a silent server's, or
	// a failure of a slow or contradicted round: see ladders): it is tried
	// again and left out of the evidence.
	Retried bool `json:"retried,omitempty"`
	// Silent marks a timeout in which the server sent nothing that
	// arrived, though a loss would have let its flight's tail through
	// (silentServer): it is retried with a longer wait.
	Silent   bool          `json:"-"`
	Connect  time.Duration `json:"-"`
	Duration time.Duration `json:"-"`
}

// segmentTest converts the attempt into diagnose's evidence.
func (h Handshake) segmentTest() diagnose.SegmentTest {
	seg := h.SndMSS
	if seg <= 0 {
		seg = max(h.MSS-packet.TCPTimestampsLen, 1)
	}
	return diagnose.SegmentTest{UpSize: h.UpSize, DownSize: h.DownSize, Up: h.Up, Down: h.Down, Outcome: h.Outcome, Detail: h.Detail,
		HelloSegments: (h.HelloBytes + seg - 1) / seg}
}

// handshake dials addr with TCP_MAXSEG mss, sends a ClientHello built from
// spec and follows the server's first flight until it is complete, the
// server gives up, or the handshake timeout passes.
func (r *runner) handshake(ctx context.Context, kind string, mss int, spec tlswire.HelloSpec) (h Handshake) {
	h = Handshake{Kind: kind, MSS: mss, Up: diagnose.Untested, Down: diagnose.Untested}
	start := r.now()
	defer func() { h.Duration = r.now().Sub(start) }()
	hello, err := tlswire.Build(spec, rand.Reader)
	if err != nil {
		h.Outcome, h.Detail = diagnose.Timeout, err.Error()
		return h
	}
	h.HelloBytes = len(hello.Record)
	h.SessionID = hex.EncodeToString(hello.SessionID)
	sum := sha256.Sum256(hello.Record)
	h.helloSHA = hex.EncodeToString(sum[:])
	conn, err := r.dial(ctx, mss)
	if err != nil {
		h.Outcome, h.Detail = diagnose.ConnectFailed, err.Error()
		return h
	}
	defer conn.Close()
	h.Connect = r.now().Sub(start)
	deadline := time.Now().Add(r.hsTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	flight := tlswire.NewFlight(hello)
	var ferr, rerr error
	if _, rerr = conn.Write(hello.Record); rerr == nil {
		buf := make([]byte, 16384)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				var done bool
				if done, ferr = flight.Feed(buf[:n]); done || ferr != nil {
					break
				}
			}
			if err != nil {
				rerr = err
				break
			}
		}
	}
	info, _ := r.tcpInfo(conn.(*slotConn).Conn)
	r.classify(&h, info, flight, ferr, rerr, ctx.Err() != nil)
	return h
}

// classify fills the outcome and per-direction results of an attempt.
func (r *runner) classify(h *Handshake, info tcpInfo, f *tlswire.Flight, ferr, rerr error, cancelled bool) {
	h.SndMSS, h.RcvMSS, h.Unacked, h.Retrans, h.PMTU, h.OOOPackets = info.SndMSS, info.RcvMSS, info.Unacked, info.Retrans, info.PMTU, info.OOOPackets
	h.FlightBytes = f.Bytes
	if f.Complete {
		h.FlightBytes = f.CompleteBytes
	}
	if sh := f.ServerHello; sh != nil {
		h.TLSVersion = tlsVersionName(sh.Version)
		if sh.Group != 0 {
			h.Group = sh.Group.String()
		}
	}
	over := diagnose.IPHeader(r.family)
	if info.Timestamps {
		over += packet.TCPTimestampsLen
	}
	seg := info.SndMSS
	if seg == 0 {
		seg = max(h.MSS-packet.TCPTimestampsLen, 0) // as if timestamps were on
	}
	h.UpSize = min(h.HelloBytes, seg) + over
	h.DownSize = seg + over
	fx := diagnose.HandshakeFacts{
		Connected: true, HelloBytes: h.HelloBytes, HelloSent: h.HelloBytes,
		FlightArrived: f.Bytes, FlightComplete: f.Complete,
		Interrupted: cancelled, TimedOut: isTimeout(rerr),
	}
	if info.Unacked == 0 {
		fx.HelloArrived, fx.HelloComplete = h.HelloBytes, true
	} else {
		// Unacknowledged hello segments at the deadline: the kernel
		// retransmitted them in vain.
		fx.HelloLost = true
	}
	var nt *tlswire.NotTLSError
	var ae *tlswire.AlertError
	switch {
	case errors.As(ferr, &nt):
		fx.NotTLS, fx.NotTLSDetail = true, fmt.Sprintf("%q", nt.Prefix)
	case errors.As(ferr, &ae):
		fx.Alert, fx.AlertName = true, tlswire.AlertName(ae.Description)
	case errors.Is(ferr, tlswire.ErrHelloRetry):
		fx.Alert, fx.AlertName = true, "hello_retry_request"
	case ferr != nil:
		fx.NotTLS, fx.NotTLSDetail = true, ferr.Error()
	case rerr != nil && !fx.TimedOut:
		fx.ClosedBy, fx.CloseDetail = diagnose.ServerSide, readErrText(rerr)
	}
	h.Outcome, h.Detail = diagnose.ClassifyHandshake(fx)
	switch h.Outcome {
	case diagnose.Completed:
		h.Up = diagnose.Passed
		if info.RcvMSS >= seg && seg > 0 {
			h.Down, h.DownSize = diagnose.Passed, info.RcvMSS+over
		} else {
			h.DownSize = info.RcvMSS + over
			h.Detail = fmt.Sprintf("the server's flight (%d bytes) never filled a %d-byte segment", h.FlightBytes, seg)
		}
	case diagnose.Alert:
		h.Up = diagnose.Passed
	case diagnose.Timeout:
		if cancelled {
			h.Detail = "run timeout"
		}
	case diagnose.StalledServerFlight:
		if tail, silent := r.silentServer(h.Kind, f.Bytes, info, seg, over); silent {
			// Not even the flight's last, smaller segment came, which
			// this path carries: the server had not answered yet.
			h.Outcome, h.Silent = diagnose.Timeout, true
			h.Detail = fmt.Sprintf("the server sent nothing in time, not even its flight's last segment (%d bytes, a size "+
				"this path carries): the server or this host was busy; it proves no loss", tail)
			break
		}
		// The server acknowledged every byte of the hello: it arrived,
		// the server's answer did not.
		h.Up, h.Down = diagnose.Passed, diagnose.Failed
		h.Detail = fmt.Sprintf("%d bytes of the server's flight arrived", f.Bytes)
	case diagnose.StalledClientHello:
		h.Up = diagnose.Failed
		h.Detail = fmt.Sprintf("%d segments of the hello never acknowledged", info.Unacked)
	case diagnose.Reset:
		if f.Bytes > 0 || info.Unacked == 0 {
			h.Up = diagnose.Passed
		}
	}
}

// flightKind is the hello kind whose flights stand for kind's: the
// baseline sends the small ladder's hello.
func flightKind(kind string) string {
	if kind == KindBaseline {
		return KindSmall
	}
	return kind
}

// silentServer reports whether an attempt that got nothing of the server's
// flight (arrived bytes, in order) shows that the server sent nothing,
// rather than that the path lost it, and the size of the packet that
// should have come. A flight is written at once and leaves as full-size
// segments and a smaller last one; when the full-size ones are lost, the
// last still arrives, beyond the gap (the kernel counts it as out of
// order). So when no packet arrived beyond a gap either, and that last
// packet is no larger than one seen to arrive from the server, the server
// had not answered: slow, not lost. It needs TCP_INFO (not the portable
// mode) and a flight of the same hello seen complete.
func (r *runner) silentServer(kind string, arrived int, info tcpInfo, seg, over int) (tail int, silent bool) {
	if arrived > 0 || info.SndMSS == 0 || info.OOOPackets > 0 || seg <= 0 {
		return 0, false
	}
	r.mu.Lock()
	flight, delivered := r.flights[flightKind(kind)], r.delivered
	r.mu.Unlock()
	last := flight % seg
	if flight <= seg || last == 0 {
		return 0, false // one segment, or only full-size ones: a loss leaves nothing either
	}
	// A few bytes of margin: signatures vary in length from one
	// handshake to the next.
	tail = last + over
	return tail, tail+8 <= delivered
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func readErrText(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "the server closed the connection"
	case errors.Is(err, syscall.ECONNRESET):
		return "the server reset the connection"
	}
	return err.Error()
}

func tlsVersionName(v uint16) string {
	switch v {
	case 0x0304:
		return "TLS 1.3"
	case 0x0303:
		return "TLS 1.2"
	}
	return fmt.Sprintf("0x%04x", v)
}

// downloadFacts states what a download saw for the one classifier: herr
// from crypto/tls's handshake, rerr from the HTTP exchange after it, and
// whether a full-size segment arrived. Its small hello is taken to have
// arrived; the answer counts as the flight, complete once a full-size
// segment arrived or the server ended it. A failed handshake that did not
// time out ends as crypto/tls saw it: an alert, or an error it words.
func downloadFacts(herr, rerr error, fullSeg bool) diagnose.HandshakeFacts {
	f := diagnose.HandshakeFacts{Connected: true, HelloSent: 1, HelloArrived: 1, HelloComplete: true}
	switch {
	case herr != nil && isTimeout(herr):
		f.TimedOut = true
	case herr != nil:
		f.Alert, f.AlertName = true, herr.Error()
	case fullSeg || !isTimeout(rerr):
		f.FlightComplete = true
	default:
		f.TimedOut = true
	}
	return f
}

// dial opens a TCP connection to the run's address with TCP_MAXSEG mss,
// within the run's politeness bounds; release frees its in-flight slot.
func (r *runner) dial(ctx context.Context, mss int) (c net.Conn, err error) {
	return r.dialAddr(ctx, mss, netip.AddrPortFrom(r.addr, uint16(r.port)).String())
}

// dialAddr is dial to another address of the server (host:port); mss 0
// sets no TCP_MAXSEG, as the portable mode's connections do.
func (r *runner) dialAddr(ctx context.Context, mss int, address string) (c net.Conn, err error) {
	if !r.take() {
		return nil, errBudget
	}
	select {
	case r.inflight <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() {
		if err != nil {
			<-r.inflight
		}
	}()
	d := &net.Dialer{Timeout: r.connectTimeout, Control: dialControl(mss)}
	c, err = r.cfg.Dial(ctx, d, "tcp", address)
	if err != nil {
		return nil, err
	}
	return &slotConn{Conn: c, free: func() { <-r.inflight }}, nil
}

// slotConn gives its in-flight slot back when closed.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}

// alpnPad is an ALPN name no server speaks, offered after http/1.1 (which
// servers pick): crypto/tls has no padding extension, and its classical
// hello (about 280 bytes) falls in the 256-511-byte window some devices
// drop, which would pass for a downstream loss here. With it the hello is
// over 530 bytes.
var alpnPad = "mtuscope-padding-" + strings.Repeat("0", 233)

var errBudget = errors.New("connection budget for this run spent (MaxConnections)")

// download completes a real handshake (crypto/tls, small classical hello,
// certificate not verified: this is a measurement, nothing is trusted) at
// TCP_MAXSEG mss, sends an HTTP request and reads the answer, so the server
// sends more than its first flight downstream.
func (r *runner) download(ctx context.Context, mss int) (h Handshake) {
	h = Handshake{Kind: KindDownload, MSS: mss, Up: diagnose.Untested, Down: diagnose.Untested}
	start := r.now()
	defer func() { h.Duration = r.now().Sub(start) }()
	conn, err := r.dial(ctx, mss)
	if err != nil {
		h.Outcome, h.Detail = diagnose.ConnectFailed, err.Error()
		return h
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * r.hsTimeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	tc := tls.Client(conn, &tls.Config{
		ServerName: r.serverName, InsecureSkipVerify: true,
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}, NextProtos: []string{"http/1.1", alpnPad},
	})
	herr := tc.Handshake()
	var n int64
	var rerr error
	if herr == nil {
		host := r.serverName
		if host == "" {
			host = r.addr.String()
		}
		_, rerr = io.WriteString(tc, "GET / HTTP/1.1\r\nHost: "+host+"\r\nUser-Agent: mtuscope\r\nConnection: close\r\n\r\n")
		if rerr == nil {
			n, rerr = io.Copy(io.Discard, io.LimitReader(tc, 256<<10))
		}
	}
	info, _ := r.tcpInfo(conn.(*slotConn).Conn)
	h.SndMSS, h.RcvMSS, h.Unacked, h.FlightBytes = info.SndMSS, info.RcvMSS, info.Unacked, int(n)
	over := diagnose.IPHeader(r.family)
	if info.Timestamps {
		over += packet.TCPTimestampsLen
	}
	h.UpSize, h.DownSize = 0, info.SndMSS+over
	fullSeg := info.RcvMSS >= info.SndMSS && info.SndMSS > 0
	h.Outcome, h.Detail = diagnose.ClassifyHandshake(downloadFacts(herr, rerr, fullSeg))
	switch {
	case h.Outcome == diagnose.StalledServerFlight && herr != nil:
		h.Down, h.Detail = diagnose.Failed, herr.Error()
	case h.Outcome == diagnose.StalledServerFlight:
		h.Down, h.Detail = diagnose.Failed, "the HTTP answer stalled before a full-size segment arrived"
	case h.Outcome == diagnose.Completed && fullSeg:
		h.Down, h.DownSize = diagnose.Passed, info.RcvMSS+over
		h.Detail = strconv.FormatInt(n, 10) + " bytes of HTTP answer"
	case h.Outcome == diagnose.Completed:
		h.Detail = fmt.Sprintf("the answer (%d bytes) never filled a full-size segment", n)
	}
	return h
}
