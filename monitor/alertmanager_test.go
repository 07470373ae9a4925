package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/alertmanagertest"
)

// startAlertmanager runs Debian's prometheus-alertmanager in the
// foreground on loopback, routing every alert to the webhook at hook, and
// returns its base URL.
func startAlertmanager(t *testing.T, hook string) string {
	t.Helper()
	bin := alertmanagertest.Binary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(cfg, []byte(alertmanagertest.Config(hook)), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, alertmanagertest.Args(cfg, filepath.Join(dir, "data"), addr)...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	base := "http://" + addr
	if err := alertmanagertest.WaitReady(http.DefaultClient, base, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return base
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func TestAlertmanagerDelivery(t *testing.T) {
	// Alertmanager's own notifications land here: proof that it took the
	// firing and the resolved alert as such.
	notes := &alertmanagertest.Notifications{}
	hook := httptest.NewServer(notes)
	defer hook.Close()
	base := startAlertmanager(t, hook.URL)

	// A real alert from the monitor: the downstream-only network.
	m, rec := newMonitor(Config{})
	now := time.Now().UTC().Truncate(time.Minute)
	rng := newRand(21)
	run(m, rng, now.Add(-2*time.Minute), 1, path{Prefix: "198.51.100", Per: 12, Kind: "down"}, path{Prefix: "203.0.113", Per: 40, Kind: "clean"})
	if len(rec.alerts) != 1 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	firing := rec.alerts[0]
	s := NewAlertmanager(base, nil)
	s.Backoff = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.Enqueue(firing)
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if sent, failed, _ := s.Counts(); sent != 1 || failed != 0 {
		t.Fatalf("sent %d failed %d", sent, failed)
	}
	got := amAlerts(t, base)
	if len(got) != 1 || got[0].Labels["network"] != "198.51.100.0/24" || got[0].Labels["alertname"] != AlertNameNetwork ||
		got[0].Status.State != "active" || got[0].Annotations["direction"] != string(diagnose.Downstream) ||
		got[0].Annotations["verdict"] != string(diagnose.VerdictBlackhole) || got[0].Annotations["page_url"] != "https://diag.example/" {
		t.Fatalf("alertmanager holds %+v", got)
	}
	notes.Wait(t, "firing", "198.51.100.0/24", 30*time.Second)

	resolved := firing
	resolved.State, resolved.EndsAt = Resolved, time.Now().UTC()
	s.Enqueue(resolved)
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	// A resolved alert leaves the active list (GET /api/v2/alerts shows
	// only alerts whose endsAt lies ahead) and is notified as resolved.
	if got := amAlerts(t, base); len(got) != 0 {
		t.Fatalf("still active after resolution: %+v", got)
	}
	notes.Wait(t, "resolved", "198.51.100.0/24", 30*time.Second)
}

func amAlerts(t *testing.T, base string) []alertmanagertest.GettableAlert {
	t.Helper()
	as, err := alertmanagertest.ActiveAlerts(http.DefaultClient, base)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// A receiver that fails twice, then accepts: the batch goes through on
// the third attempt; a 400 is not retried; a full queue drops the oldest.
func TestSenderRetries(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch {
		case r.URL.Path == "/bad":
			w.WriteHeader(http.StatusBadRequest)
		case calls <= 2:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	s := NewWebhook(srv.URL+"/ok", nil)
	s.Backoff = time.Millisecond
	s.Enqueue(Alert{ID: "a", State: Firing})
	s.Drain(ctx)
	if sent, failed, _ := s.Counts(); sent != 1 || failed != 0 || calls != 3 {
		t.Fatalf("sent %d failed %d calls %d", sent, failed, calls)
	}
	calls = 10
	bad := NewWebhook(srv.URL+"/bad", nil)
	bad.Backoff = time.Millisecond
	bad.QueueSize = 2
	for i := 0; i < 5; i++ {
		bad.Enqueue(Alert{ID: fmt.Sprint(i), State: Firing})
	}
	bad.Drain(ctx)
	if sent, failed, dropped := bad.Counts(); sent != 0 || failed != 2 || dropped != 3 || calls != 11 {
		t.Fatalf("sent %d failed %d dropped %d calls %d", sent, failed, dropped, calls)
	}
}

// An organisation name with escape sequences and bidi controls, straight
// from a lookup that does not escape it: every annotation Alertmanager
// receives holds it escaped, none a raw control character.
func TestAnnotationsEscaped(t *testing.T) {
	org := "Evil\x1b]0;pwned\x07\x1b[2J\nNet\u202egnp"
	rec := &recorder{}
	m := New(Config{}, Options{Notify: rec.notify, Lookup: func(a netip.Addr) asn.Result {
		r := asn.Result{Addr: a, Prefix: fallbackPrefix(a)}
		if a.As4()[0] == 192 {
			r.ASN, r.Org = 64496, org
		}
		return r
	}})
	run(m, newRand(31), t0, 1, path{Prefix: "192.0.2", Per: 12, Kind: "down"}, path{Prefix: "203.0.113", Per: 40, Kind: "clean"})
	if len(rec.alerts) != 1 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	body, err := encodeAlertmanager(rec.alerts)
	if err != nil {
		t.Fatal(err)
	}
	var got []struct{ Annotations map[string]string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range got[0].Annotations {
		if strings.ContainsAny(v, "\x1b\x07\u202e") || (k != "description" && k != "fix" && strings.Contains(v, "\n")) {
			t.Errorf("annotation %s holds raw control characters: %q", k, v)
		}
	}
	if want := `Evil\x1b]0;pwned\x07\x1b[2J\x0aNet\u202egnp`; got[0].Annotations["org"] != want || !strings.Contains(got[0].Annotations["summary"], want) {
		t.Errorf("org %q, summary %q, want %q in both", got[0].Annotations["org"], got[0].Annotations["summary"], want)
	}
}
