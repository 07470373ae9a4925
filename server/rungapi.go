package server

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/sockopt"
)

// rungHandler serves the rung listeners: the page's three steps, whoami
// and the capabilities, with CORS for exactly the page's origins.
func (s *Server) rungHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.RungHelloPath, s.testLimited(s.rungHello))
	mux.HandleFunc("GET "+api.RungDownPath, s.testLimited(s.rungDown))
	mux.HandleFunc("POST "+api.RungUpPath, s.testLimited(s.rungUp))
	mux.HandleFunc("GET "+api.RungClaimPath, s.testLimited(s.rungClaim))
	mux.HandleFunc("GET "+api.RungExactPath, s.limited(s.testLim, "test", s.rungExact))
	mux.HandleFunc("GET "+api.WhoamiPath, s.limited(s.testLim, "test", s.whoami))
	mux.HandleFunc("GET "+api.ConnectionsPath+"{sid}", s.limited(s.testLim, "test", s.connection))
	mux.HandleFunc("GET "+api.UDPTokenPath, s.limited(s.testLim, "test", s.udpToken))
	mux.HandleFunc("GET "+api.CapabilitiesPath, s.capabilities)
	inner := s.metrics.instrument(kindRung, mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		// One request per connection: a browser must not carry a connection
		// from one check into the next (its records belong to the check that
		// opened it), and every step of a rung tests a fresh handshake.
		w.Header().Set("Connection", "close")
		if o := r.Header.Get("Origin"); o != "" && s.pageOrigin(o, r) {
			w.Header().Set("Access-Control-Allow-Origin", o)
			w.Header().Set("Vary", "Origin")
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
				w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
					// Chromium's Private Network Access: a page on one
					// address may test the server's other family's address.
					w.Header().Set("Access-Control-Allow-Private-Network", "true")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
}

// pageOrigin reports whether origin is one the page is served from: the
// configured host names or the host this request named, on the page's
// HTTPS or HTTP port.
func (s *Server) pageOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Path != "" || u.User != nil {
		return false
	}
	var port string
	switch u.Scheme {
	case "https":
		port = portOf(s.Addrs["https"])
	case "http":
		port = portOf(s.Addrs["http"])
	}
	if port == "" || u.Port() != port {
		return false
	}
	host := bracket(u.Hostname())
	for _, h := range s.rungHosts(r) {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// testLimited rate-limits a rung step. A step that names a session holding
// its address's lease counts against that session's budget (enough for
// every rung of both families, with retries), not against the address:
// an office behind one address runs its checks one after the other, each
// at full speed. Anything else shares the address's token bucket.
func (s *Server) testLimited(h http.HandlerFunc) http.HandlerFunc {
	limited := s.limited(s.testLim, "test", h)
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("s")
		if !validID(id) {
			limited(w, r)
			return
		}
		sess := s.sessions.get(id)
		if sess == nil || !sess.holding(time.Now()) {
			limited(w, r)
			return
		}
		if ip := clientAddr(r); familyOf(ip) == sess.Family && addrKey(ip) != addrKey(sess.IP) {
			limited(w, r) // another address of the same family: not this session's
			return
		}
		sess.mu.Lock()
		sess.tests++
		over := sess.tests > s.sessionTestBudget()
		sess.mu.Unlock()
		if over {
			s.metrics.limited.WithLabelValues("test").Inc()
			w.Header().Set("Retry-After", "2")
			httpError(w, http.StatusTooManyRequests, "this check made more requests than a check needs")
			return
		}
		h(w, r)
	}
}

// sessionTestBudget is how many rung steps one session may make: three
// per rung and family, twice over, and the refinement round.
func (s *Server) sessionTestBudget() int { return 2*3*2*len(s.rungs) + 200 }

// tagSession names the session on the request's connection.
func (s *Server) tagSession(r *http.Request) *connRecord {
	rec := connRecordFrom(r)
	id := r.URL.Query().Get("s")
	if rec == nil || !validID(id) {
		return rec
	}
	if sess := s.sessions.get(id); sess != nil {
		rec.setSession(id)
		sess.addIP(rec.Client.Addr())
	}
	return rec
}

func (s *Server) rungHello(w http.ResponseWriter, r *http.Request) {
	rec := s.tagSession(r)
	out := map[string]any{"ok": true}
	if rec != nil {
		out["mss"], out["syn_mss"] = rec.MSS, rec.SYNMSS
	}
	writeJSON(w, http.StatusOK, out)
}

// rungClaim is what the page asks first from the address of a family
// other than its own (a dual-stack check): the session's lease extends to
// that address, so that its unnamed connections from then on are the
// session's. claimed false: another check from that address is testing;
// the page asks again.
func (s *Server) rungClaim(w http.ResponseWriter, r *http.Request) {
	s.tagSession(r)
	id := r.URL.Query().Get("s")
	sess := s.sessions.get(id)
	if !validID(id) || sess == nil {
		httpError(w, http.StatusNotFound, "no such session")
		return
	}
	ok := s.sessions.claim(sess, clientAddr(r), time.Now())
	writeJSON(w, http.StatusOK, api.Claim{Claimed: ok, RetryMs: startRetryMs})
}

func (s *Server) rungDown(w http.ResponseWriter, r *http.Request) {
	s.tagSession(r)
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n <= 0 || n > len(s.download) {
		httpError(w, http.StatusBadRequest, "n must be 1 to "+strconv.Itoa(len(s.download)))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	w.Write(s.download[:n])
}

func (s *Server) rungUp(w http.ResponseWriter, r *http.Request) {
	s.tagSession(r)
	n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxUpload))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "upload larger than "+strconv.Itoa(maxUpload)+" bytes")
		return
	}
	writeJSON(w, http.StatusOK, api.Uploaded{Received: n})
}

// downProbe is the server-first test: as soon as a client connects, write
// one full-size segment (the connection's MSS, TCP_NODELAY), then hold the
// connection while the client reads, so the join can see in TCP_INFO
// whether the segment was acknowledged. The client's own bytes are
// ignored: the test needs nothing from it, which is the point.
func (s *Server) downProbe(c *evConn) {
	defer c.Close()
	select {
	case s.downSem <- struct{}{}:
		defer func() { <-s.downSem }()
	default:
		return
	}
	ti, err := sockopt.ReadTCPInfo(c.rec.raw)
	if err != nil || ti.SndMSS <= 0 {
		return
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	n, _ := c.Conn.Write(make([]byte, ti.SndMSS))
	c.rec.mu.Lock()
	c.rec.downWritten = n
	c.rec.mu.Unlock()
	// Hold the connection until the client closes it or the deadline
	// passes; Close keeps the final TCP_INFO, whose bytes_acked tells.
	_, err = io.Copy(io.Discard, io.LimitReader(c.Conn, 64<<10))
	c.noteReset(err) // a reset before the segment was acknowledged says nothing of its size
}
