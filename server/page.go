package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/internal/adminhost"
	"github.com/mtuscope/mtuscope/web"
)

// PagePath is the page's stable address besides "/", for support macros
// and status pages.
const PagePath = "/check"

// pageHandler serves the page, its API and the public report views; with
// admin it also serves metrics, health and (without a token) the
// operator views.
func (s *Server) pageHandler(admin bool) http.Handler {
	mux := http.NewServeMux()
	static := http.FileServerFS(web.Static())
	index, _ := fs.ReadFile(web.Static(), "index.html")
	servePage := func(w http.ResponseWriter, r *http.Request) {
		s.pageHeaders(w, r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(index)
	}
	mux.HandleFunc("GET /{$}", servePage)
	mux.HandleFunc("GET "+PagePath, servePage)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.pageHeaders(w, r)
		w.Header().Set("Cache-Control", "public, max-age=300")
		static.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /dl/{name}", s.limited(s.testLim, "test", s.serveBinary))
	mux.HandleFunc("GET "+api.PingPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+api.SessionsPath, s.limited(s.sessLim, "session", s.newSession))
	mux.HandleFunc("POST "+api.SessionsPath+"/{id}/start", s.startSession)
	mux.HandleFunc("POST "+api.SessionsPath+"/{id}/refine", s.refineSession)
	mux.HandleFunc("POST "+api.SessionsPath+"/{id}/result", s.limited(s.repLim, "report", s.sessionResult))
	mux.HandleFunc("GET "+api.ReportPagePath+"{id}", s.reportPage)
	mux.HandleFunc("GET "+api.CapabilitiesPath, s.capabilities)
	mux.HandleFunc("GET "+api.WhoamiPath, s.limited(s.testLim, "test", s.whoami))
	mux.HandleFunc("GET "+api.ConnectionsPath+"{sid}", s.limited(s.testLim, "test", s.connection))
	mux.HandleFunc("GET "+api.UDPTokenPath, s.limited(s.testLim, "test", s.udpToken))
	mux.HandleFunc("POST "+api.ReportsPath, s.limited(s.repLim, "report", s.submitReport))
	mux.HandleFunc("GET "+api.ReportsPath, s.operator(admin, s.listReports))
	mux.HandleFunc("GET "+api.ReportsPath+"/{id}", s.operator(admin, s.getReport))
	mux.HandleFunc("GET /operator", s.operator(admin, s.operatorPage))
	kind := kindPage
	if admin {
		kind = "admin"
		mux.Handle("GET /metrics", s.metrics.handler())
		mux.HandleFunc("GET /healthz", s.health)
	}
	return s.metrics.instrument(kind, mux)
}

func (s *Server) adminHandler() http.Handler { return adminhost.Guard(s.pageHandler(true)) }

// pageHeaders sets the security headers of the page; connect-src names
// exactly the rung origins of the host the page was loaded from.
func (s *Server) pageHeaders(w http.ResponseWriter, r *http.Request) {
	var origins []string
	scheme := "https" // a page over http:// with the self-signed certificate measures over http (Session.Plain)
	if r.TLS == nil && s.certs.SelfSigned != "" {
		scheme = "http"
	}
	for _, h := range s.rungHosts(r) {
		if s.cfg.Rungs.RefinePorts > 0 && len(s.cfg.Rungs.Addresses) == 0 && !strings.HasPrefix(h, "[") {
			// The refinement round borrows ports from a pool: any port
			// of the page's host (CORS on the rungs names the page).
			origins = append(origins, fmt.Sprintf("%s://%s:*", scheme, h))
			continue
		}
		for _, rg := range s.rungs {
			host := h
			if rg.Host != "" {
				host = bracket(rg.Host)
			}
			if strings.HasPrefix(host, "[") {
				// CSP host sources cannot name IPv6 literals: allow HTTPS
				// by scheme (CORS on the rungs still names the page exactly).
				origins = append(origins[:0], scheme+":")
				goto done
			}
			origins = append(origins, fmt.Sprintf("%s://%s:%d", scheme, host, rg.Port))
			if rg.DownPort > 0 {
				origins = append(origins, fmt.Sprintf("%s://%s:%d", scheme, host, rg.DownPort))
			}
		}
	}
done:
	securityHeaders(w, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self' "+strings.Join(origins, " ")+"; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
}

// rungHosts returns the hosts (bracketed when IPv6) the page will test:
// the configured per-family names, or the host it was loaded from.
func (s *Server) rungHosts(r *http.Request) []string {
	var out []string
	for _, h := range []string{s.cfg.HostnameV4, s.cfg.HostnameV6} {
		if h != "" {
			out = append(out, bracket(h))
		}
	}
	if len(out) == 0 {
		out = append(out, requestHost(r))
	}
	return out
}

func bracket(h string) string {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		return "[" + h + "]"
	}
	return h
}

// requestHost is the host part of the request's Host header, bracketed
// when it is an IPv6 literal.
func requestHost(r *http.Request) string {
	h := r.Host
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return bracket(ap.Addr().String())
	}
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return h
}

// clientAddr is the address the request came from (no proxy headers are trusted).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// limited applies a per-address rate limit to h.
func (s *Server) limited(l *limiter, name string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !l.allow(clientAddr(r)) {
			s.metrics.limited.WithLabelValues(name).Inc()
			w.Header().Set("Retry-After", "10")
			httpError(w, http.StatusTooManyRequests, "too many requests from your address; try again shortly")
			return
		}
		h(w, r)
	}
}

// operator guards the operator views and the report API: on the admin
// listener they are open; elsewhere they need the token, and without a
// configured token they do not exist.
//
// The token is refused over plain HTTP (it would cross the network in
// clear), and failures are limited per address (authFailuresPerMinute):
// past them even the right token is refused for a while, so it cannot be
// guessed at any speed.
func (s *Server) operator(admin bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !admin {
			if s.token == "" {
				http.NotFound(w, r)
				return
			}
			if r.TLS == nil {
				httpError(w, http.StatusForbidden, "the operator token is accepted over HTTPS only")
				return
			}
			ip := clientAddr(r)
			if s.authFail.exhausted(ip) {
				s.metrics.limited.WithLabelValues("auth").Inc()
				w.Header().Set("Retry-After", "60")
				httpError(w, http.StatusTooManyRequests, "too many failed attempts from your address; try again in a minute")
				return
			}
			if !tokenOK(r, s.token) {
				s.authFail.allow(ip) // count the failure
				w.Header().Set("WWW-Authenticate", `Bearer realm="mtuscope"`)
				httpError(w, http.StatusUnauthorized, "this needs the operator token")
				return
			}
		}
		h(w, r)
	}
}

// authFailuresPerMinute bounds the failed token attempts of one address.
const authFailuresPerMinute = 5

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decodeJSON reads a JSON body of at most limit bytes into v, strictly:
// unknown fields and trailing data are errors.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body larger than %d bytes", limit)
		}
		return fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("malformed JSON: data after the object")
	}
	return nil
}

// minFreeBytes is the free space below which the server reports that it
// cannot store reports.
const minFreeBytes = 8 << 20

// health answers ok only when a report could be stored now: a write
// commits and the disk has room.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if err := s.store.CheckWrite(r.Context(), minFreeBytes); err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": s.version,
		"connections_tracked": s.reg.size(), "time": time.Now().UTC()})
}
