package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"
)

// Timeouts and caps every HTTP server of mtuscope has.
const (
	readHeaderTimeout = 10 * time.Second // also bounds the TLS handshake
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	maxJSONBody       = 256 << 10 // page results, probe submissions
	maxUpload         = 1 << 20   // the rung upload test
	maxDownload       = 256 << 10 // the rung download test
)

type ctxKey int

const connKey ctxKey = 0

// newHTTPServer is the one constructor of every HTTP server mtuscope
// runs: header, read, write and idle timeouts, a header size cap, TLS 1.2
// at least, errors to the logger, and the accepted connection in each
// request's context so handlers can read what the connection saw.
//
// Each server gets its own copy of tlsConf (ServeTLS's HTTP/2 set-up
// writes to the server's config), and speaks HTTP/2 only when tlsConf's
// ALPN list names "h2": the rungs, one test per connection, stay
// HTTP/1.1 whatever a client offers.
func newHTTPServer(h http.Handler, tlsConf *tls.Config, log *slog.Logger) *http.Server {
	var protos *http.Protocols
	if tlsConf != nil {
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = slices.Clone(tlsConf.NextProtos)
		if !slices.Contains(tlsConf.NextProtos, "h2") {
			protos = new(http.Protocols)
			protos.SetHTTP1(true)
		}
	}
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		Protocols:         protos,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey, c)
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateActive {
				if rec := recordOf(c); rec != nil {
					rec.markHandshakeDone()
				}
			}
		},
	}
}

// tlsConfig returns the TLS settings of every HTTPS listener: TLS 1.2 at
// least, the given ALPN protocols.
func tlsConfig(certs *certSource, protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: certs.getCert,
		NextProtos:     protos,
	}
}

// connRecordFrom returns the record of the connection r arrived on.
func connRecordFrom(r *http.Request) *connRecord {
	c, _ := r.Context().Value(connKey).(net.Conn)
	if c == nil {
		return nil
	}
	return recordOf(c)
}

// securityHeaders sets the headers every response of the page carries.
func securityHeaders(w http.ResponseWriter, csp string) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}
