// Package adminhost guards the admin listeners of serve and watch against
// DNS rebinding.
package adminhost

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Guard serves only the requests that name the listener by an IP literal
// or "localhost" in their Host header, and answers the others 421
// Misdirected Request: a page a browser on this host loaded from some name
// must not read the admin views by pointing that name at 127.0.0.1.
// /metrics and /healthz (counts and a status, which scrapers and probes
// may ask for by host name) answer to any name.
func Guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" || r.URL.Path == "/healthz" || Local(r.Host) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMisdirectedRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "the admin listener answers only to an IP address or localhost"})
	})
}

// Local reports whether host (a Host header, with or without a port)
// names the listener by an IP literal or "localhost".
func Local(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return strings.EqualFold(host, "localhost")
}
