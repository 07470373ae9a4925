package adminhost

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGuard(t *testing.T) {
	h := Guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{"127.0.0.1:9091", "/api/networks", 200},
		{"[::1]:9091", "/api/alerts", 200},
		{"localhost:9091", "/", 200},
		{"LOCALHOST", "/", 200},
		{"192.0.2.1", "/api/alerts", 200},
		{"rebind.example", "/api/networks", 421},
		{"rebind.example:9091", "/api/alerts", 421},
		{"localhost.rebind.example", "/", 421},
		{"127.0.0.1.nip.example", "/api/alerts", 421},
		{"", "/api/networks", 421},
		{"monitoring.example:9091", "/metrics", 200},
		{"monitoring.example", "/healthz", 200},
	} {
		r := httptest.NewRequest("GET", "http://x"+tc.path, nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("Host %q %s: %d, want %d", tc.host, tc.path, w.Code, tc.want)
		}
	}
}
