package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mtuscope/mtuscope/internal/handshakestream"
	"github.com/mtuscope/mtuscope/monitor"
	"github.com/mtuscope/mtuscope/store"
)

func TestConfig(t *testing.T) {
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yml", "interface: eth0\nports: [443, 8443]\npage_url: https://diag.example/\nmonitor:\n  bucket: 30s\n  top_n: 10\n")
	c, err := LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.Monitor.Bucket != 30*time.Second || c.Monitor.Window != 5 || len(c.Ports) != 2 {
		t.Fatalf("%+v %v", c, err)
	}
	for name, body := range map[string]string{
		"unknown key":      "interfce: eth0\n",
		"unknown nested":   "monitor:\n  buckets: 1m\n",
		"two documents":    "interface: eth0\n---\ninterface: eth1\n",
		"wrong type":       "ports: four\n",
		"bad duration":     "handshake_timeout: soon\n",
		"bad port":         "ports: [70000]\n",
		"bad url":          "alertmanager: localhost:9093\n",
		"tiny flow table":  "max_flows: 3\n",
		"alpha order":      "monitor:\n  alpha: 0.1\n  resolve_alpha: 0.05\n",
		"no window at all": "monitor:\n  bucket: 1ms\n",
	} {
		p := write(strings.ReplaceAll(name, " ", "_")+".yml", body)
		c, err := LoadConfig(p)
		if err == nil {
			err = c.Validate()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

type hook struct {
	mu     sync.Mutex
	alerts []monitor.Alert
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct{ Alerts []monitor.Alert }
	json.NewDecoder(r.Body).Decode(&msg)
	h.mu.Lock()
	h.alerts = append(h.alerts, msg.Alerts...)
	h.mu.Unlock()
}

// Handshakes fed to a Watcher reach every output: the operator view, the
// metrics, the handshake log, the webhook, and the database, which keeps
// buckets and alerts after a restart.
func TestOutputs(t *testing.T) {
	dir := t.TempDir()
	hk := &hook{}
	hs := httptest.NewServer(hk)
	defer hs.Close()
	cfg := Defaults()
	cfg.DataDir = dir
	cfg.Database = filepath.Join(dir, "watch.db")
	cfg.HandshakeLog = filepath.Join(dir, "handshakes.log")
	cfg.Webhook = hs.URL
	cfg.PageURL = "https://diag.example/"
	w, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	stream := handshakestream.Stream(rand.New(rand.NewPCG(1, 2)), t0, 3,
		handshakestream.Network{Prefix: "192.0.2", Per: 12, Kind: handshakestream.S2},
		handshakestream.Network{Prefix: "203.0.113", Per: 40, Kind: handshakestream.Clean})
	stalls := 0
	for _, h := range stream {
		w.emit(h)
		if monitor.Logged(&h) {
			stalls++
		}
	}
	w.Monitor.Flush()

	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(b)
	}
	view := get("/")
	for _, want := range []string{"192.0.2.0/24", "<svg", "<polyline", "pmtud_blackhole", "both",
		"nft add rule ip filter forward tcp flags syn tcp option maxseg size set", "https://diag.example/",
		"against 100.0%\nfor the other healthy networks (40 handshakes from 1)"} {
		if !strings.Contains(view, want) {
			t.Errorf("view lacks %q", want)
		}
	}
	if strings.Index(view, "192.0.2.0/24") > strings.Index(view, "203.0.113.0/24") {
		t.Errorf("the alerting network is not ranked first")
	}
	metrics := get("/metrics")
	for _, want := range []string{`mtuscope_network_alert_firing{network="192.0.2.0/24"} 1`, `mtuscope_handshakes_total{family="4",outcome="completed"} 120`,
		`mtuscope_network_handshakes_total{network="other",outcome="completed"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var snap monitor.Snapshot
	if err := json.Unmarshal([]byte(get("/api/networks")), &snap); err != nil || len(snap.Networks) != 2 || len(snap.Networks[0].Series) == 0 {
		t.Errorf("api/networks: %v %+v", err, snap)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The handshake log: one line per stalled handshake.
	f, err := os.Open(cfg.HandshakeLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
	}
	f.Close()
	if lines != stalls || stalls != 36 {
		t.Errorf("%d log lines, %d stalls, want 36", lines, stalls)
	}
	hk.mu.Lock()
	if len(hk.alerts) != 1 || hk.alerts[0].Network != "192.0.2.0/24" || hk.alerts[0].State != monitor.Firing {
		t.Errorf("webhook got %+v", hk.alerts)
	}
	hk.mu.Unlock()
	// The database, reopened.
	s, err := store.Open(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bs, err := s.Buckets(ctx, t0, "192.0.2.0/24")
	if err != nil || len(bs) != 3 || bs[0].StalledUp+bs[0].StalledDown != 12 {
		t.Errorf("buckets %+v %v", bs, err)
	}
	as, err := s.Alerts(ctx, 10)
	if err != nil || len(as) != 1 || as[0].Verdict != "pmtud_blackhole" || as[0].Direction != "both" {
		t.Errorf("alerts %+v %v", as, err)
	}
	s.Close()

	// A restart: the alert left firing is closed as such, the buckets come
	// back into the chart and the window, and a network still failing
	// fires again at the end of its first bucket.
	w2, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Restore(ctx, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	snap2 := w2.Monitor.Snapshot(true)
	stalled := 0
	for _, n := range snap2.Networks {
		for _, p := range n.Series {
			stalled += p.Stalled
		}
	}
	if len(snap2.Networks) != 2 || stalled != 36 {
		t.Errorf("after the restart: %d networks, %d stalls in the series", len(snap2.Networks), stalled)
	}
	for _, h := range handshakestream.Stream(rand.New(rand.NewPCG(3, 4)), t0.Add(3*time.Minute), 1,
		handshakestream.Network{Prefix: "192.0.2", Per: 12, Kind: handshakestream.S2},
		handshakestream.Network{Prefix: "203.0.113", Per: 40, Kind: handshakestream.Clean}) {
		w2.emit(h)
	}
	w2.Monitor.Advance(t0.Add(4 * time.Minute))
	if got := w2.Monitor.Snapshot(false).Alerts; len(got) != 1 || got[0].State != monitor.Firing {
		t.Errorf("after the restart: alerts %+v", got)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = store.Open(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	as, _ = s.Alerts(ctx, 10)
	states := map[string]int{}
	for _, a := range as {
		states[a.State]++
	}
	if states["resolved"] != 1 || states["firing"] != 1 {
		t.Errorf("alert history after the restart: %+v", as)
	}
}

// docs/watch.yaml lists every setting with its default.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("../docs/watch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Interface = "eth0"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("docs/watch.yaml\n%+v\ndefaults\n%+v", c, want)
	}
	b, _ := os.ReadFile("../docs/watch.yaml")
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	check := func(typ reflect.Type, m map[string]any, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			if key := typ.Field(i).Tag.Get("yaml"); key != "" {
				if _, ok := m[key]; !ok {
					t.Errorf("docs/watch.yaml lacks %s%s", prefix, key)
				}
			}
		}
	}
	check(reflect.TypeOf(Config{}), doc, "")
	mon, _ := doc["monitor"].(map[string]any)
	check(reflect.TypeOf(monitor.Config{}), mon, "monitor.")
}
