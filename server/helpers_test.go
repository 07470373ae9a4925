package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// loopback starts a server on 127.0.0.1 with free ports, a small rung set
// and the given changes to its configuration.
func loopback(t *testing.T, change func(*Config)) *Server {
	t.Helper()
	cfg := Defaults()
	cfg.HTTPS, cfg.HTTP, cfg.Admin, cfg.Target, cfg.Echo.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Rungs.First, cfg.Rungs.Last, cfg.Rungs.Step, cfg.Rungs.BasePort = 1220, 1460, 80, 0
	if change != nil {
		change(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(cfg, log, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) { l.t.Log(strings.TrimSpace(string(b))); return len(b), nil }

// client trusts anything: the loopback server's certificate is self-signed.
func client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 32,
	}}
}

func (s *Server) url(name, path string) string {
	scheme := "https"
	if name != "https" {
		scheme = "http"
	}
	return fmt.Sprintf("%s://%s%s", scheme, s.Addrs[name], path)
}

func (s *Server) rungURL(r rung, path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", r.Port, path)
}

// do runs a request and returns the status and body.
func do(t *testing.T, c *http.Client, method, url, ctype string, body io.Reader, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b)
}

func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	return strings.NewReader(string(b)), err
}
