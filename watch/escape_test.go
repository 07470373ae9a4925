package watch

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/asntest"
	"github.com/mtuscope/mtuscope/internal/handshakestream"
	"github.com/mtuscope/mtuscope/store"
)

// rawControls are what a terminal or a reader would act on: escape
// sequences, BEL, bidi override and isolate.
const rawControls = "\x1b\x07\u202e\u2066"

// An ASN organisation name with escape sequences and bidi controls reaches
// no output of watch raw: the operator view, the JSON of networks and
// alerts, the metric labels, the handshake log, the webhook's alerts and
// the database all carry it escaped.
func TestOrgEscaped(t *testing.T) {
	dir := t.TempDir()
	evil := "Evil\x1b]0;pwned\x07\x1b[2J Net\u202egnp.exe\u2066"
	escaped := `Evil\x1b]0;pwned\x07\x1b[2J Net\u202egnp.exe\u2066`
	hk := &hook{}
	hs := httptest.NewServer(hk)
	defer hs.Close()
	cfg := Defaults()
	cfg.DataDir = dir
	cfg.ASNDatabase = filepath.Join(dir, "asn.db")
	cfg.Database = filepath.Join(dir, "watch.db")
	cfg.HandshakeLog = filepath.Join(dir, "handshakes.log")
	cfg.Webhook = hs.URL
	asntest.WriteTestbedOrgs(t, cfg.ASNDatabase, 64496, evil)
	w, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// AS64496 (198.51.100.1-14) stalls, 203.0.113.0/24 completes.
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(5, 6))
	bad := handshakestream.Network{Prefix: "198.51.100", Kind: handshakestream.S2}
	good := handshakestream.Network{Prefix: "203.0.113", Kind: handshakestream.Clean}
	for i := range 40 {
		ts := t0.Add(time.Duration(i) * time.Second)
		if i < 12 {
			w.emit(bad.Handshake(rng, i%14, ts))
		}
		w.emit(good.Handshake(rng, i, ts))
	}
	w.Monitor.Flush()

	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	outputs := map[string]string{}
	for _, path := range []string{"/", "/metrics", "/api/networks", "/api/alerts"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		outputs[path] = string(b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg.HandshakeLog)
	if err != nil {
		t.Fatal(err)
	}
	outputs["handshake log"] = string(b)
	hk.mu.Lock()
	b, _ = json.Marshal(hk.alerts)
	hk.mu.Unlock()
	outputs["webhook"] = string(b)
	s, err := store.Open(cfg.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bs, err := s.Buckets(context.Background(), t0, "AS64496")
	if err != nil {
		t.Fatal(err)
	}
	as, err := s.Alerts(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal([]any{bs, as})
	outputs["database"] = string(b)

	if !strings.Contains(outputs["/"], "AS64496") || !strings.Contains(outputs["webhook"], "AS64496") || len(as) != 1 {
		t.Fatalf("AS64496 did not alert: view %t, webhook %s, stored alerts %d", strings.Contains(outputs["/"], "AS64496"), outputs["webhook"], len(as))
	}
	for name, out := range outputs {
		// JSON outputs: the decoded strings, which is what a reader shows.
		text := out
		for _, line := range strings.Split(out, "\n") {
			var v any
			if json.Unmarshal([]byte(line), &v) == nil {
				text += strings.Join(jsonStrings(v), "\n")
			}
		}
		var v any
		if json.Unmarshal([]byte(out), &v) == nil {
			text += strings.Join(jsonStrings(v), "\n")
		}
		if strings.ContainsAny(text, rawControls) {
			t.Errorf("%s: raw control characters in %.300q", name, text)
		}
		// /api/alerts reads the database, which its writer may not have
		// reached yet: the stored alert is checked below, after Close.
		if name != "/api/alerts" && !strings.Contains(text, escaped) && !strings.Contains(text, strings.ReplaceAll(escaped, `\`, `\\`)) {
			t.Errorf("%s: the organisation name is not there escaped", name)
		}
	}
}

// jsonStrings returns every string in a decoded JSON value.
func jsonStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, jsonStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, jsonStrings(e)...)
		}
		return out
	}
	return nil
}
