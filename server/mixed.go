package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/api"
)

// The rung listeners speak TLS and plain HTTP on the same port, told apart
// by the first byte the client sends (a TLS record starts with 22, an HTTP
// request with a letter). TLS is what the page measures with whenever the
// browser trusts the certificate; plain HTTP is for the one case where it
// cannot: a page opened over http:// from a server with the self-signed
// certificate serve makes on its first start, which no browser trusts.
//
// The TLS handshake runs here rather than in net/http, so that its error
// is kept on the connection's record: a browser that refuses the
// certificate answers the server's flight with an alert (Chromium:
// certificate_unknown), and that alert, not a lost packet, is why its
// request never came.

// tlsRecordHandshake is the first byte of a TLS handshake record.
const tlsRecordHandshake = 0x16

// mixedListener returns connections that decide on their first read
// whether they are TLS.
type mixedListener struct {
	net.Listener
	conf *tls.Config
}

func (l *mixedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &mixedConn{Conn: c, conf: l.conf}, nil
}

// mixedConn is one rung connection: on its first read it reads one byte,
// then runs the TLS handshake over it or hands it back as plain HTTP.
// net/http reads before it writes, under its header deadline, which so
// also bounds the handshake.
type mixedConn struct {
	net.Conn // the evConn the listener accepted
	conf     *tls.Config
	once     sync.Once
	inner    net.Conn // *tls.Conn, or the plain connection with its first byte
	tls      *tls.Conn
	err      error
}

func (c *mixedConn) start() {
	var b [1]byte
	n, err := c.Conn.Read(b[:])
	if n == 0 {
		if err == nil {
			err = errors.New("no data")
		}
		c.err = err
		return
	}
	first := &prefixConn{Conn: c.Conn, first: b[0], has: true}
	if b[0] != tlsRecordHandshake {
		c.inner = first
		return
	}
	tc := tls.Server(first, c.conf)
	// net/http has set the read deadline; the flight's writes get one too,
	// so a client that never reads cannot hold the handshake.
	c.Conn.SetWriteDeadline(time.Now().Add(readHeaderTimeout))
	defer c.Conn.SetWriteDeadline(time.Time{})
	if err := tc.Handshake(); err != nil {
		if rec := recordOf(c.Conn); rec != nil {
			rec.noteHandshakeError(err)
		}
		c.err = err
		return
	}
	c.inner, c.tls = tc, tc
}

func (c *mixedConn) Read(p []byte) (int, error) {
	c.once.Do(c.start)
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Read(p)
}

func (c *mixedConn) Write(p []byte) (int, error) {
	c.once.Do(c.start)
	if c.err != nil {
		return 0, c.err
	}
	return c.inner.Write(p)
}

// Close sends TLS's close_notify when the connection is TLS.
func (c *mixedConn) Close() error {
	if c.tls != nil {
		return c.tls.Close()
	}
	return c.Conn.Close()
}

// prefixConn gives back a byte already read before the rest.
type prefixConn struct {
	net.Conn
	first byte
	has   bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.has && len(p) > 0 {
		p[0], c.has = c.first, false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// overTLS reports whether r arrived over TLS, on any listener.
func overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	c, _ := r.Context().Value(connKey).(net.Conn)
	mc, ok := c.(*mixedConn)
	return ok && mc.tls != nil
}

// certificateAlert returns the alert's name when err is the client's TLS
// alert refusing the server's certificate ("unknown certificate", "unknown
// certificate authority", "bad certificate", ...), else "".
func certificateAlert(err error) string {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return ""
	}
	name := strings.TrimPrefix(op.Err.Error(), "tls: ")
	switch name {
	case "bad certificate", "unsupported certificate", "revoked certificate", "expired certificate",
		"unknown certificate", "unknown certificate authority", "access denied",
		"bad certificate status response", "bad certificate hash value":
		return name
	}
	return ""
}

// noteHandshakeError keeps the certificate alert a failed handshake ended with.
func (r *connRecord) noteHandshakeError(err error) {
	if a := certificateAlert(err); a != "" {
		r.mu.Lock()
		r.certAlert = a
		r.mu.Unlock()
	}
}

// certRefused counts the session's rung connections whose handshake the
// browser ended by refusing the certificate, on the sizes whose hello step
// the page failed, and names the alert. Refusals on sizes that passed do
// not count: after a person clicked through the warning for a self-signed
// certificate, Chromium refuses each new connection's certificate once and
// then connects again under the exception, and the size is measured. Nor
// does any refusal count once a rung connection of the session completed
// its handshake: the browser took the certificate there, and a size whose
// second connection was too slow for a busy page is no refusal.
func (s *Server) certRefused(sess *session, rungs []api.BrowserRung) (alert string, n int) {
	type key struct{ fam, mss int }
	failed := map[key]bool{}
	for _, r := range rungs {
		if r.Hello == api.StepFail {
			failed[key{r.Family, r.MSS}] = true
		}
	}
	if len(failed) == 0 {
		return "", 0
	}
	from, to, _ := sess.window()
	for _, ip := range sess.addrs() {
		for _, rec := range s.reg.since(ip, from) {
			if rec.Kind != kindRung || rec.Accepted.After(to) || !failed[key{familyOf(ip), rec.MSS}] {
				continue
			}
			rec.mu.Lock()
			a, sid := rec.certAlert, rec.session
			rec.mu.Unlock()
			if a != "" && (sid == "" || sid == sess.ID) {
				alert, n = a, n+1
			}
		}
	}
	if n > 0 && s.certTaken(sess) {
		return "", 0
	}
	return alert, n
}

// certTaken reports whether a rung connection of the session completed
// its TLS handshake: the browser accepted the certificate.
func (s *Server) certTaken(sess *session) bool {
	from, to, _ := sess.window()
	for _, ip := range sess.addrs() {
		for _, rec := range s.reg.since(ip, from) {
			if rec.Kind != kindRung || rec.Accepted.After(to) {
				continue
			}
			rec.mu.Lock()
			done, sid := rec.handshakeDone, rec.session
			rec.mu.Unlock()
			if done && (sid == "" || sid == sess.ID) {
				return true
			}
		}
	}
	return false
}

// certRefusedText is what the page shows when the browser refused the
// certificate: what happened, that nothing about the network was
// concluded or stored, and what the operator can do.
func certRefusedText(alert string, n int, selfSigned bool) string {
	fix := "The operator of this server must give it a certificate that browsers trust, with its whole chain (--cert/--key, or --acme-host)."
	if selfSigned {
		fix = "This server uses the self-signed certificate mtuscope serve makes: open the page over http:// (serve prints that address first), " +
			"where it measures without TLS, or give serve a trusted certificate (--cert/--key, or --acme-host)."
	}
	return fmt.Sprintf("The server's certificate is not trusted by this browser: the browser refused it with the TLS alert %q "+
		"(%d connections). Nothing about your network could be measured, and no result was stored. %s", alert, n, fix)
}
