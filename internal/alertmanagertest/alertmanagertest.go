// Package alertmanagertest runs Debian's Prometheus Alertmanager for
// tests: its binary, a configuration that delivers at once to a webhook,
// the receiver of that webhook, readiness (Prometheus's too) and the
// alerts it holds.
package alertmanagertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Binary returns the path of Debian's prometheus-alertmanager.
// Without it the test skips, except on CI (CI=true) where it fails.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus-alertmanager not installed (apt-get install prometheus-alertmanager): %v", err)
		}
		t.Skipf("prometheus-alertmanager not installed: %v", err)
	}
	return bin
}

// Config is a configuration that routes every alert, one
// group per network, to the webhook at hook at once, resolutions included.
func Config(hook string) string {
	return fmt.Sprintf(`route:
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
}

// Args are the arguments that run Alertmanager in the
// foreground on addr with its state in dir, without clustering.
func Args(configFile, dir, addr string) []string {
	return []string{"--config.file=" + configFile, "--storage.path=" + dir,
		"--web.listen-address=" + addr, "--cluster.listen-address="}
}

// WaitReady polls base/-/ready (Alertmanager's or Prometheus's) until it
// answers 200 or the deadline passes.
func WaitReady(c *http.Client, base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %w", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// GettableAlert is the part of Alertmanager's GET /api/v2/alerts answer
// tests read.
type GettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// ActiveAlerts returns the alerts Alertmanager holds as active (a resolved
// alert, whose endsAt has passed, is no longer listed).
func ActiveAlerts(c *http.Client, base string) ([]GettableAlert, error) {
	resp, err := c.Get(base + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []GettableAlert
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("alertmanager alerts %q: %w", b, err)
	}
	return out, nil
}

// Notifications is a webhook receiver for Alertmanager that records the
// status ("firing", "resolved") and the network label of each notification.
type Notifications struct {
	mu   sync.Mutex
	seen []Notification
}

// Notification is one webhook call of Alertmanager.
type Notification struct {
	Status  string
	Network string
}

func (n *Notifications) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Status      string            `json:"status"`
		GroupLabels map[string]string `json:"groupLabels"`
	}
	json.NewDecoder(r.Body).Decode(&msg)
	n.mu.Lock()
	n.seen = append(n.seen, Notification{Status: msg.Status, Network: msg.GroupLabels["network"]})
	n.mu.Unlock()
}

// Seen returns the notifications so far.
func (n *Notifications) Seen() []Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Notification(nil), n.seen...)
}

// Wait returns once a notification with status for network arrived.
func (n *Notifications) Wait(t testing.TB, status, network string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		for _, x := range n.Seen() {
			if x.Status == status && x.Network == network {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager never notified %s for %q (it sent %v)", status, network, n.Seen())
		}
	}
}
