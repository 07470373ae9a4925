package watch

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// The admin listener answers only requests that name it by an IP address
// or localhost: a DNS-rebinding page (Host: a name pointed at 127.0.0.1)
// gets 421 on the operator view and the JSON of networks and alerts, as
// from serve's admin listener; /metrics and /healthz answer to any name.
func TestAdminHostCheck(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	w, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := w.ServeAdmin(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{"rebind.example", "/api/networks", http.StatusMisdirectedRequest},
		{"rebind.example:9091", "/api/alerts", http.StatusMisdirectedRequest},
		{"rebind.example", "/", http.StatusMisdirectedRequest},
		{addr, "/api/networks", http.StatusOK},
		{"localhost:9091", "/api/alerts", http.StatusOK},
		{"[::1]:9091", "/", http.StatusOK},
		{"monitoring.example:9091", "/metrics", http.StatusOK},
		{"monitoring.example", "/healthz", http.StatusOK},
	} {
		req, err := http.NewRequest("GET", "http://"+addr+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q %s: %d, want %d (%.80s)", tc.host, tc.path, resp.StatusCode, tc.want, body)
		}
	}
}
