package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// startAlertmanager runs Debian's prometheus-alertmanager in the
// foreground on loopback, routing every alert to the webhook receiver at
// hook (resolved notifications included), and returns its base URL.
// Without the binary the test skips, except on CI (CI=true) where it fails.
func startAlertmanager(t *testing.T, hook string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus-alertmanager not installed (apt-get install prometheus-alertmanager): %v", err)
		}
		t.Skipf("prometheus-alertmanager not installed: %v", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: hook
  group_by: [alertname, network]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: hook
  webhook_configs:
  - url: %q
    send_resolved: true
`, hook)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "am.yml"),
		"--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--cluster.listen-address=")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
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
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready at %s: %v\n%s", base, err, out.String())
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// gettableAlert is the part of Alertmanager's GET /api/v2/alerts answer
// the test reads.
type gettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func TestAlertmanagerDelivery(t *testing.T) {
	// Alertmanager's own notifications land here: proof that it took the
	// firing and the resolved alert as such.
	notes := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Status string `json:"status"`
		}
		json.NewDecoder(r.Body).Decode(&msg)
		notes <- msg.Status
	}))
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
	waitNote(t, notes, "firing")

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
	waitNote(t, notes, "resolved")
}

func amAlerts(t *testing.T, base string) []gettableAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []gettableAlert
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return out
}

func waitNote(t *testing.T, notes <-chan string, want string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s := <-notes:
			if s == want {
				return
			}
		case <-timeout:
			t.Fatalf("alertmanager never notified %q", want)
		}
	}
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
