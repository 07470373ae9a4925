package server

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/api/echowire"
)

// stillServes fails the test unless the page still loads.
func stillServes(t *testing.T, s *Server) {
	t.Helper()
	if code, body := do(t, client(), "GET", s.url("https", "/"), "", nil); code != 200 || !strings.Contains(body, "Network path check") {
		t.Fatalf("the server stopped serving: %d", code)
	}
}

func TestSlowloris(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	var conns []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", s.Addrs["http"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		conns = append(conns, c)
	}
	// A TLS slowloris too: half a ClientHello, then nothing.
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", s.Addrs["https"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{22, 3, 1, 2, 0, 1, 0, 1, 252})
		conns = append(conns, c)
	}
	stillServes(t, s)
	// Every slow connection is closed by the server, not held forever.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("slow connection %d still open after 30 s", i)
		}
	}
	stillServes(t, s)
}

// zeros is an endless reader that counts what it gave.
type zeros struct {
	n, limit int64
}

func (z *zeros) Read(p []byte) (int, error) {
	if z.n >= z.limit {
		return 0, io.EOF
	}
	n := int64(len(p))
	if z.n+n > z.limit {
		n = z.limit - z.n
	}
	clear(p[:n])
	atomic.AddInt64(&z.n, n)
	return int(n), nil
}

func TestHugeUploads(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	const gig = 1 << 30
	for _, u := range []struct{ url, ctype string }{
		{s.rungURL(s.rungs[0], "/t/up"), "text/plain"},
		{s.url("https", "/api/v1/reports"), "application/json"},
		{s.url("http", "/api/v1/sessions"), "application/json"},
	} {
		z := &zeros{limit: gig}
		req, _ := http.NewRequest("POST", u.url, z)
		req.Header.Set("Content-Type", u.ctype)
		req.ContentLength = gig
		resp, err := client().Do(req)
		if err == nil {
			if resp.StatusCode != http.StatusRequestEntityTooLarge && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: 1 GiB upload answered %s", u.url, resp.Status)
			}
			resp.Body.Close()
		}
		if sent := atomic.LoadInt64(&z.n); sent > 64<<20 {
			t.Errorf("%s: the server read on to %d MiB of a 1 GiB upload", u.url, sent>>20)
		}
	}
	stillServes(t, s)
}

func TestMalformedInput(t *testing.T) {
	t.Parallel()
	s := loopback(t, func(c *Config) {
		c.Limits.ReportsPerMinute, c.Limits.SessionsPerMinute, c.Limits.Burst = 6000, 6000, 10000
	})
	c := client()
	code, body := do(t, c, "POST", s.url("https", "/api/v1/sessions"), "application/json", strings.NewReader(`{}`))
	if code != http.StatusCreated {
		t.Fatalf("session: %d %s", code, body)
	}
	var sess api.Session
	decode(t, body, &sess)
	bodies := []string{``, `{`, `[]`, `null`, `{"rungs": "x"}`, `{"unknown": 1}`, `{"rungs":[]} {"rungs":[]}`,
		`{"rungs":[{"mss": 1221, "family": 4, "hello": "ok"}]}`, `{"rungs":[{"mss": 1220, "family": 5}]}`,
		`{"rungs":[{"mss": 1220, "family": 4, "hello": "<script>"}]}`, "\xff\xfe", strings.Repeat("[", 100000),
		`{"evidence": []}`, `{"evidence": [{"family": 7}]}`}
	for _, path := range []string{"/api/v1/sessions/" + sess.ID + "/result", "/api/v1/reports", "/api/v1/sessions"} {
		for _, b := range bodies {
			if path == "/api/v1/sessions" && json.Valid([]byte(b)) && !strings.Contains(b, "unknown") && !strings.Contains(b, "rungs") && !strings.Contains(b, "evidence") {
				continue // a session needs no body: {} [] and null start one
			}
			code, resp := do(t, c, "POST", s.url("https", path), "application/json", strings.NewReader(b))
			var e map[string]string
			if code != http.StatusBadRequest || json.Unmarshal([]byte(resp), &e) != nil || e["error"] == "" {
				t.Errorf("POST %s %.40q: %d %.200s", path, b, code, resp)
			}
		}
	}
	stillServes(t, s)
}

func TestBadIDsAndPaths(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	paths := []string{
		"/r/" + strings.Repeat("a", 10000), "/r/" + strings.Repeat("a", 25), "/r/" + strings.Repeat("a", 26),
		"/r/AAAAAAAAAAAAAAAAAAAAAAAAAA", "/r/%00", "/r/..%2f..%2fetc%2fpasswd", "/r/a.html", "/r/" + strings.Repeat("a", 26) + ".exe",
		"/api/v1/sessions/" + strings.Repeat("z", 5000) + "/result",
		"/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd",
		"/static/../server.go", "/../../etc/passwd", "/static//etc/passwd",
	}
	for _, p := range paths {
		for _, name := range []string{"https", "admin"} {
			method := "GET"
			if strings.HasSuffix(p, "/result") {
				method = "POST"
			}
			code, body := do(t, c, method, s.url(name, p), "application/json", strings.NewReader("{}"))
			if code == 200 || code >= 500 || strings.Contains(body, "root:") || strings.Contains(body, "package server") {
				t.Errorf("%s %s on %s: %d %.100q", method, p, name, code, body)
			}
		}
		code, _ := do(t, c, "GET", s.url("admin", "/api/v1/reports/"+strings.TrimPrefix(p, "/r/")), "", nil)
		if code == 200 || code >= 500 {
			t.Errorf("API report %s: %d", p, code)
		}
	}
	// A header block larger than the cap is refused, not buffered.
	conn, err := tls.Dial("tcp", s.Addrs["https"], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 1<<20))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MiB header: %s", resp.Status)
	}
	stillServes(t, s)
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	s := loopback(t, func(c *Config) { c.Limits.SessionsPerMinute, c.Limits.Burst = 1, 30 })
	c := client()
	var limited int
	for i := 0; i < 20; i++ {
		code, _ := do(t, c, "POST", s.url("https", "/api/v1/sessions"), "application/json", strings.NewReader(`{}`))
		if code == http.StatusTooManyRequests {
			limited++
		} else if code != http.StatusCreated {
			t.Fatalf("session %d: %d", i, code)
		}
	}
	if limited < 10 {
		t.Errorf("%d of 20 sessions refused with a burst of 3 and 1 a minute", limited)
	}
	stillServes(t, s)
}

func TestEchoRefusesWithoutToken(t *testing.T) {
	t.Parallel()
	s := loopback(t, func(c *Config) { c.Echo.Burst, c.Echo.PerSecond = 4, 0.001 })
	c := client()
	code, body := do(t, c, "GET", s.url("https", "/api/v1/udp-token"), "", nil)
	if code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	var tok struct {
		Token string `json:"token"`
		Port  int    `json:"port"`
	}
	decode(t, body, &tok)
	if code, _ := do(t, c, "GET", s.url("http", "/api/v1/udp-token"), "", nil); code != http.StatusForbidden {
		t.Errorf("token over plain HTTP: %d", code)
	}
	u, err := net.Dial("udp", s.Addrs["echo"])
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	send := func(token string, flags byte, size int) (int, bool) {
		req, err := echowire.AppendRequest(nil, flags, []byte(token), size)
		if err != nil {
			t.Fatal(err)
		}
		u.Write(req)
		u.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 65536)
		n, err := u.Read(buf)
		return n, err == nil
	}
	forged := strings.Repeat("A", len(tok.Token))
	for _, bad := range []string{"", "nonsense", forged, tok.Token[:len(tok.Token)-1] + "B"} {
		if _, ok := send(bad, echowire.FlagEcho, 1200); ok {
			t.Errorf("answered a datagram with token %q", bad)
		}
	}
	u.Write([]byte("not an echo request at all"))
	// With the token: answered, never larger than the request.
	for _, sz := range []int{100, 1400} {
		for _, flags := range []byte{0, echowire.FlagEcho} {
			n, ok := send(tok.Token, flags, sz)
			if !ok || n > sz {
				t.Errorf("size %d flags %d: reply %d bytes, answered %v", sz, flags, n, ok)
			}
		}
	}
	// The burst (4) is spent: further datagrams go unanswered.
	if _, ok := send(tok.Token, 0, 100); ok {
		t.Errorf("answered beyond the per-source rate")
	}
	_, mbody := do(t, c, "GET", s.url("admin", "/metrics"), "", nil)
	for _, want := range []string{`mtuscope_echo_datagrams_total{outcome="no_token"} 4`, `mtuscope_echo_datagrams_total{outcome="malformed"} 1`,
		`mtuscope_echo_datagrams_total{outcome="answered"} 4`, `mtuscope_echo_datagrams_total{outcome="rate_limited"} 1`} {
		if !strings.Contains(mbody, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	stillServes(t, s)
}
