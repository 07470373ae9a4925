package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mtuscope/mtuscope/diagnose"
)

// The metrics pass client_golang's linter, carry no network label on the
// totals, and the per-network series stay within TopN + alerting + other.
func TestMetrics(t *testing.T) {
	m, _ := newMonitor(Config{TopN: 2})
	rng := newRand(30)
	var ps []path
	for i := 0; i < 8; i++ {
		ps = append(ps, path{Prefix: fmt.Sprintf("10.2.%d", i), Per: 4 + i, Kind: "clean"})
	}
	ps = append(ps, path{Prefix: "192.0.2", Per: 6, Kind: "s2"})
	run(m, rng, t0, 3, ps...)
	reg := NewRegistry(m, func() PipelineStats { return PipelineStats{Packets: 10, Dropped: 1, FlowsMax: 100} }, nil, nil)
	probs, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	nets := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "mtuscope_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s", name)
		}
		for _, x := range mf.GetMetric() {
			for _, l := range x.GetLabel() {
				if l.GetName() == "network" {
					if name == "mtuscope_handshakes_total" {
						t.Errorf("network label on the totals")
					}
					nets[l.GetValue()] = true
				}
			}
		}
	}
	if len(nets) != 4 || !nets["other"] || !nets["192.0.2.0/24"] {
		t.Errorf("network label values %v, want the top 2, the alerting one and other", nets)
	}
}

// One JSON line per stalled or failed handshake, Zeek field names, the
// same uid for the same connection.
func TestHandshakeLog(t *testing.T) {
	var buf bytes.Buffer
	l := NewHandshakeLog(&buf, nil)
	rng := newRand(40)
	at := t0.Add(time.Second)
	for i, kind := range []string{"clean", "down", "s2", "s2"} {
		h := path{Prefix: "192.0.2", Kind: kind}.Handshake(rng, i, at)
		if err := l.Write(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	var recs []map[string]any
	for _, line := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	for _, k := range []string{"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "outcome", "network"} {
		if _, ok := recs[0][k]; !ok {
			t.Errorf("no field %s in %v", k, recs[0])
		}
	}
	if recs[0]["outcome"] != string(diagnose.StalledServerFlight) || recs[0]["stall"] != "downstream" || recs[0]["network"] != "192.0.2.0/24" {
		t.Errorf("first line %v", recs[0])
	}
	if recs[1]["stall"] != "upstream" || recs[2]["stall"] != "downstream" {
		t.Errorf("stalls %v %v", recs[1]["stall"], recs[2]["stall"])
	}
	if u := recs[0]["uid"].(string); len(u) != 12 || u[0] != 'C' || u == recs[1]["uid"] {
		t.Errorf("uids %v %v", u, recs[1]["uid"])
	}
}
