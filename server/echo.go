package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/api/echowire"
	"github.com/mtuscope/mtuscope/sockopt"
)

// echoServer answers probe's UDP datagrams, but only from a source address
// that fetched a token over HTTPS (so the address is not spoofed), within
// a per-source rate, and never with more bytes than it received: it cannot
// be used to reflect or amplify traffic at someone else.
type echoServer struct {
	conn    *net.UDPConn
	key     [32]byte
	ttl     time.Duration
	lim     *limiter
	metrics *metrics
	now     func() time.Time
}

func newEchoServer(ctx context.Context, cfg EchoConfig, m *metrics) (*echoServer, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	e := &echoServer{conn: pc.(*net.UDPConn), ttl: cfg.TokenTTL, lim: newLimiter(cfg.PerSecond, cfg.Burst),
		metrics: m, now: time.Now}
	rand.Read(e.key[:])
	return e, nil
}

// Close stops the echo.
func (e *echoServer) Close() error { return e.conn.Close() }

// Port is the echo's UDP port.
func (e *echoServer) Port() int { return e.conn.LocalAddr().(*net.UDPAddr).Port }

// token returns a token for ip, valid until the returned time.
func (e *echoServer) token(ip netip.Addr) (string, time.Time) {
	exp := e.now().Add(e.ttl).Truncate(time.Second)
	return base64.RawURLEncoding.EncodeToString(e.sign(ip, exp)), exp
}

func (e *echoServer) sign(ip netip.Addr, exp time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(exp.Unix()))
	m := hmac.New(sha256.New, e.key[:])
	m.Write(b[:])
	a := ip.Unmap().As16()
	m.Write(a[:])
	return append(b[:], m.Sum(nil)[:16]...)
}

// errToken is why a datagram's token is refused.
var errToken = errors.New("bad or expired token")

// check verifies a raw token (its base64 text) for ip.
func (e *echoServer) check(tok []byte, ip netip.Addr) error {
	raw, err := base64.RawURLEncoding.DecodeString(string(tok))
	if err != nil || len(raw) != 24 {
		return errToken
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	if e.now().After(exp) || exp.Sub(e.now()) > e.ttl+time.Second {
		return errToken
	}
	if !hmac.Equal(e.sign(ip, exp), raw) {
		return errToken
	}
	return nil
}

func (e *echoServer) serve() {
	buf := make([]byte, 65536)
	out := make([]byte, 0, 65536)
	lastDF := false
	if raw, err := e.conn.SyscallConn(); err == nil && sockopt.SetDontFragment(raw, true) == nil {
		lastDF = true
	}
	for {
		n, from, err := e.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		d := buf[:n]
		req, err := echowire.ParseRequest(d)
		if err != nil {
			e.metrics.echo.WithLabelValues("malformed").Inc()
			continue
		}
		ip := from.Addr().Unmap()
		if err := e.check(req.Token, ip); err != nil {
			e.metrics.echo.WithLabelValues("no_token").Inc()
			continue
		}
		if !e.lim.allow(ip) {
			e.metrics.echo.WithLabelValues("rate_limited").Inc()
			continue
		}
		if df := req.Flags&echowire.FlagFragment == 0; df != lastDF {
			if raw, err := e.conn.SyscallConn(); err == nil && sockopt.SetDontFragment(raw, df) == nil {
				lastDF = df
			}
		}
		out = echowire.AppendReply(out[:0], d, req)
		if _, err := e.conn.WriteToUDPAddrPort(out, from); err != nil {
			e.metrics.echo.WithLabelValues("send_error").Inc()
			continue
		}
		e.metrics.echo.WithLabelValues("answered").Inc()
	}
}
