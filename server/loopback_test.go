package server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// runPage does in Go what the page's script does: a session, the three
// steps and the server-first probe on every rung, then the result.
func runPage(t *testing.T, s *Server, c *http.Client) (int, map[string]any) {
	t.Helper()
	code, body := do(t, c, "POST", s.url("https", "/api/v1/sessions"), "application/json", strings.NewReader(`{"rtt_ms":1}`))
	if code != http.StatusCreated {
		t.Fatalf("session: %d %s", code, body)
	}
	var sess api.Session
	decode(t, body, &sess)
	var rungs []api.BrowserRung
	for _, r := range sess.Rungs {
		br := api.BrowserRung{MSS: r.MSS, Family: 4, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK, Probe: api.StepOpened}
		if code, _ := do(t, c, "GET", s.rungURL(r, "/t/hello?s="+sess.ID), "", nil); code != 200 {
			br.Hello = api.StepFail
		}
		if code, b := do(t, c, "GET", s.rungURL(r, fmt.Sprintf("/t/down?s=%s&n=%d", sess.ID, sess.DownloadBytes)), "", nil); code != 200 || len(b) != sess.DownloadBytes {
			br.Down = api.StepFail
		}
		if code, b := do(t, c, "POST", s.rungURL(r, "/t/up?s="+sess.ID), "text/plain", bytes.NewReader(make([]byte, sess.UploadBytes))); code != 200 || !strings.Contains(b, fmt.Sprint(sess.UploadBytes)) {
			br.Up = api.StepFail
		}
		// The probe: the server writes first; read its segment and close.
		pc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.DownPort))
		if err != nil {
			t.Fatal(err)
		}
		pc.SetDeadline(time.Now().Add(5 * time.Second))
		if n, err := io.ReadAtLeast(pc, make([]byte, 2000), 100); err != nil || n < r.MSS-12 {
			t.Errorf("rung %d: the probe wrote %d bytes (%v), want a full segment", r.MSS, n, err)
		}
		pc.Close()
		rungs = append(rungs, br)
	}
	b, _ := jsonBody(api.PageResult{Rungs: rungs, RTTms: 1})
	code, body = do(t, c, "POST", s.url("https", "/api/v1/sessions/"+sess.ID+"/result"), "application/json", b)
	var out map[string]any
	if code == http.StatusCreated {
		decode(t, body, &out)
	} else {
		t.Logf("result: %d %s", code, body)
	}
	return code, out
}

func TestLoopbackPage(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	// The page and its assets.
	for _, p := range []string{"/", PagePath, "/static/app.js", "/static/style.css"} {
		code, body := do(t, c, "GET", s.url("https", p), "", nil)
		if code != 200 || len(body) < 100 {
			t.Errorf("GET %s: %d (%d bytes)", p, code, len(body))
		}
	}
	req, _ := http.NewRequest("GET", s.url("http", "/"), nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The loopback server has the self-signed certificate: over http the
	// page measures over http (Session.Plain), so its CSP names http rungs.
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "http://127.0.0.1:*;") {
		t.Errorf("CSP over http %q", csp)
	}
	resp, err = c.Get(s.url("https", "/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "https://127.0.0.1:*;") {
		t.Errorf("CSP over https %q", csp)
	}
	code, out := runPage(t, s, c)
	if code != http.StatusCreated {
		t.Fatalf("result: %d", code)
	}
	if out["verdict"] != "ok" || out["direction"] != "none" {
		t.Errorf("loopback verdict %v/%v, want ok/none", out["verdict"], out["direction"])
	}
	id := out["id"].(string)
	var rep Report
	code, body := do(t, c, "GET", s.url("https", "/r/"+id+".json"), "", nil)
	if code != 200 {
		t.Fatalf("report json: %d", code)
	}
	decode(t, body, &rep)
	p := rep.Primary()
	if len(p.Rungs) != len(s.rungs) {
		t.Fatalf("%d rungs in the report, want %d", len(p.Rungs), len(s.rungs))
	}
	for _, r := range p.Rungs {
		if r.Test.Up != diagnose.Passed || r.Test.Down != diagnose.Passed || r.Test.Outcome != diagnose.Completed {
			t.Errorf("rung %d: %+v", r.MSS, r.Test)
		}
		var tagged, probe bool
		for _, sn := range r.Server {
			tagged = tagged || sn.Kind == kindRung && sn.HandshakeDone && sn.HelloHash != ""
			probe = probe || sn.Kind == kindDown && sn.DownWritten > 0 && sn.Info.BytesAcked >= int64(sn.DownWritten)
		}
		if !tagged || !probe {
			t.Errorf("rung %d: server evidence missing (tls %v, probe %v): %+v", r.MSS, tagged, probe, r.Server)
		}
	}
	if code, body := do(t, c, "GET", s.url("https", "/r/"+id), "", nil); code != 200 || !strings.Contains(body, "the path is clean") {
		t.Errorf("report page: %d", code)
	}
	if code, body := do(t, c, "GET", s.url("https", "/r/"+id+".txt"), "", nil); code != 200 || !strings.Contains(body, "verdict ok") {
		t.Errorf("report text: %d %q", code, body)
	}
	// The result is posted once; posting again returns the same report.
	code, body = do(t, c, "POST", s.url("https", "/api/v1/sessions/"+rep.ID+"/result"), "application/json", strings.NewReader(`{"rungs":[]}`))
	if code != http.StatusNotFound {
		t.Errorf("result for a report ID as a session: %d %s", code, body)
	}
	// Operator API: on the admin listener, open; on the public one, absent without a token.
	if code, body := do(t, c, "GET", s.url("admin", "/api/v1/reports?verdict=ok"), "", nil); code != 200 || !strings.Contains(body, id) {
		t.Errorf("admin list: %d %s", code, body)
	}
	if code, _ := do(t, c, "GET", s.url("https", "/api/v1/reports"), "", nil); code != http.StatusNotFound {
		t.Errorf("public list without a configured token: %d, want 404", code)
	}
	if code, body := do(t, c, "GET", s.url("admin", "/operator"), "", nil); code != 200 || !strings.Contains(body, id) {
		t.Errorf("operator view: %d", code)
	}
	if code, body := do(t, c, "GET", s.url("admin", "/metrics"), "", nil); code != 200 || !strings.Contains(body, `mtuscope_reports_stored_total{source="page",verdict="ok"} 1`) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
	if code, _ := do(t, c, "GET", s.url("https", "/metrics"), "", nil); code != http.StatusNotFound {
		t.Errorf("metrics on the public listener: %d", code)
	}
}

func TestOperatorToken(t *testing.T) {
	t.Parallel()
	const token = "s3cret-operator-token-0123"
	s := loopback(t, func(c *Config) { c.Token = token })
	c := client()
	u := s.url("https", "/api/v1/reports")
	if code, _ := do(t, c, "GET", u, "", nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code, _ := do(t, c, "GET", u, "", nil, "Authorization", "Bearer "+token); code != 200 {
		t.Errorf("right token: %d", code)
	}
	// Never over plain HTTP, even the right one.
	if code, _ := do(t, c, "GET", s.url("http", "/api/v1/reports"), "", nil, "Authorization", "Bearer "+token); code != http.StatusForbidden {
		t.Errorf("token over plain HTTP: %d, want 403", code)
	}
	// Failures are limited: after a few, even the right token waits.
	codes := []int{}
	for i := 0; i < authFailuresPerMinute+1; i++ {
		code, _ := do(t, c, "GET", u, "", nil, "Authorization", "Bearer wrong")
		codes = append(codes, code)
	}
	if codes[0] != http.StatusUnauthorized || codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Errorf("wrong tokens answered %v, want 401s then 429", codes)
	}
	if code, _ := do(t, c, "GET", u, "", nil, "Authorization", "Bearer "+token); code != http.StatusTooManyRequests {
		t.Errorf("right token after the failures: %d, want 429", code)
	}
	// A short token is refused at start.
	cfg := Defaults()
	cfg.Token = "short"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("short token accepted: %v", err)
	}
}

// TestAdminHostCheck: the admin listener serves only requests that name
// it by address or localhost (no DNS rebinding).
func TestAdminHostCheck(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	for host, want := range map[string]int{"": 200, "localhost": 200, "[::1]:9090": 200, "rebind.example": 421, "evil.example:9090": 421} {
		req, _ := http.NewRequest("GET", s.url("admin", "/api/v1/reports"), nil)
		if host != "" {
			req.Host = host
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// Metrics and health answer to any name (scrapers use host names).
	req, _ := http.NewRequest("GET", s.url("admin", "/metrics"), nil)
	req.Host = "monitoring.example:9090"
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("metrics by host name: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	r := s.rungs[0]
	page := "https://" + s.Addrs["https"]
	cases := []struct {
		origin string
		allow  bool
	}{
		{page, true},
		{"http://" + s.Addrs["http"], true},
		{"https://evil.example", false},
		{"https://127.0.0.1:1", false},
		{"http://" + s.Addrs["https"], false},
		{"null", false},
	}
	for _, cs := range cases {
		req, _ := http.NewRequest("GET", s.rungURL(r, "/t/hello"), nil)
		req.Header.Set("Origin", cs.origin)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if (got == cs.origin) != cs.allow || (!cs.allow && got != "") {
			t.Errorf("origin %q: Access-Control-Allow-Origin %q", cs.origin, got)
		}
	}
}
