package monitor

import (
	"fmt"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/handshakestream"
)

// logStats writes each alert's figures: the network's rate, the
// reference's rate and lower bound, the p-value.
func logStats(t *testing.T, rec *recorder) {
	t.Helper()
	for _, a := range rec.alerts {
		s := a.Stats
		t.Logf("%s %s %s: %d/%d completed (%.3f, shrunk %.3f) against %d/%d of %d networks, %d left out (%.3f, lower %.4f), p = %.3g",
			a.State, a.Kind, a.Network, s.Completed, s.Handshakes, s.Rate, s.Shrunk,
			int(s.OthersRate*float64(s.Others)+0.5), s.Others, s.OthersNetworks, s.Excluded, s.OthersRate, s.OthersLower, s.PValue)
	}
}

// The capture: one network with the story's black hole (20 of 20
// stalled), one whose server flights over 1300 bytes are lost (12 of 12),
// two healthy (35 and 30 completed), in one minute. Both failing networks
// alert at the end of that minute, neither healthy one does, and the
// 12-handshake network is compared with the healthy networks only.
func TestTwoFailingNetworks(t *testing.T) {
	m, rec := newMonitor(Config{})
	run(m, newRand(21), t0, 1,
		path{Prefix: "192.0.2", Per: 20, Kind: "s2"}, path{Prefix: "198.51.100", Per: 12, Kind: "down"},
		path{Prefix: "203.0.113", Per: 35, Kind: "clean"}, path{Prefix: "100.64.0", Per: 30, Kind: "clean"})
	logStats(t, rec)
	f := rec.firing()
	if len(f) != 2 || rec.count(KindServer, Firing) != 0 {
		t.Fatalf("firing %v, want the two failing networks", keys(f))
	}
	for _, key := range []string{"network/192.0.2.0/24", "network/198.51.100.0/24"} {
		a, ok := f[key]
		if !ok {
			t.Fatalf("no alert %s: %v", key, keys(f))
		}
		if a.Stats.OthersRate != 1 || a.Stats.Others != 65 || a.Stats.OthersNetworks != 2 || a.Stats.Excluded != 1 {
			t.Errorf("%s compared with %d handshakes of %d networks at %.3f (%d left out), want the healthy 65 of 2 at 1 (1 left out)",
				key, a.Stats.Others, a.Stats.OthersNetworks, a.Stats.OthersRate, a.Stats.Excluded)
		}
	}
}

// However many networks fail at once, while most networks are healthy,
// every failing one alerts within one evaluation and no healthy one does,
// even when the failing networks carry most of the traffic. Four failing
// (two of them small) and five healthy; then three big failing against
// four small healthy ones (the failing carry 90 of 130 handshakes).
func TestManyFailingNetworks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		failing []path
		healthy []path
	}{
		{"four of nine",
			[]path{{Prefix: "192.0.2", Per: 20, Kind: "s2"}, {Prefix: "198.51.100", Per: 12, Kind: "down"},
				{Prefix: "198.51.101", Per: 10, Kind: "down"}, {Prefix: "198.51.102", Per: 8, Kind: "s2"}},
			[]path{{Prefix: "203.0.113", Per: 35, Kind: "clean"}, {Prefix: "100.64.0", Per: 30, Kind: "clean"},
				{Prefix: "100.64.1", Per: 6, Kind: "clean"}, {Prefix: "100.64.2", Per: 4, Kind: "lossy", Loss: 0.015},
				{Prefix: "100.64.3", Per: 50, Kind: "lossy", Loss: 0.015}}},
		{"most traffic failing",
			[]path{{Prefix: "192.0.2", Per: 30, Kind: "s2"}, {Prefix: "198.51.100", Per: 30, Kind: "down"},
				{Prefix: "198.51.101", Per: 30, Kind: "down"}},
			[]path{{Prefix: "203.0.113", Per: 10, Kind: "clean"}, {Prefix: "100.64.0", Per: 10, Kind: "clean"},
				{Prefix: "100.64.1", Per: 10, Kind: "clean"}, {Prefix: "100.64.2", Per: 10, Kind: "clean"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(0); seed < 20; seed++ {
				m, rec := newMonitor(Config{})
				run(m, newRand(100+seed), t0, 1, append(append([]path{}, tc.failing...), tc.healthy...)...)
				if seed == 0 {
					logStats(t, rec)
				}
				f := rec.firing()
				if len(f) != len(tc.failing) || rec.count(KindServer, Firing) != 0 {
					t.Fatalf("seed %d: firing %v, want the %d failing networks", seed, keys(f), len(tc.failing))
				}
				for _, p := range tc.failing {
					if _, ok := f["network/"+p.Prefix+".0/24"]; !ok {
						t.Fatalf("seed %d: %s.0/24 not firing: %v", seed, p.Prefix, keys(f))
					}
				}
			}
		})
	}
}

// The largest customer, most of the server's traffic, fails alone after a
// clean start: its own network alert, not a server-wide one, and the
// healthy ones stay quiet.
func TestLargestCustomerFailsAlone(t *testing.T) {
	m, rec := newMonitor(Config{})
	rng := newRand(22)
	small := []path{{Prefix: "203.0.113", Per: 10, Kind: "clean"}, {Prefix: "100.64.0", Per: 8, Kind: "clean"},
		{Prefix: "100.64.1", Per: 6, Kind: "lossy", Loss: 0.015}}
	run(m, rng, t0, 3, append([]path{{Prefix: "192.0.2", Per: 100, Kind: "clean"}}, small...)...)
	run(m, rng, t0.Add(3*time.Minute), 3, append([]path{{Prefix: "192.0.2", Per: 100, Kind: "down"}}, small...)...)
	logStats(t, rec)
	f := rec.firing()
	if _, ok := f["network/192.0.2.0/24"]; !ok || len(f) != 1 || rec.count(KindServer, Firing) != 0 {
		t.Fatalf("firing %v, want only the largest customer's network alert", keys(f))
	}
}

// Many networks, every one at 1.5% loss, some small: the reference is the
// healthy networks, not the cleanest ones, and nothing alerts over hours.
func TestManyLossyNeverAlert(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		m, rec := newMonitor(Config{})
		var ps []path
		for i := range 30 {
			ps = append(ps, path{Prefix: fmt.Sprintf("10.2.%d", i), Per: 1 + (i*7)%40, Kind: "lossy", Loss: 0.015})
		}
		run(m, newRand(200+seed), t0, 60, ps...)
		if len(rec.alerts) != 0 {
			t.Fatalf("seed %d: %+v", seed, rec.alerts[0])
		}
	}
}

// The cost of one evaluation with the network table full: 2000 networks
// with handshakes in every bucket, 50 of them failing.
func BenchmarkEvaluate(b *testing.B) {
	m, _ := newMonitor(Config{})
	rng := newRand(23)
	var ps []path
	for i := range 1999 {
		kind := "clean"
		if i%40 == 0 {
			kind = "down"
		}
		ps = append(ps, path{Prefix: fmt.Sprintf("10.%d.%d", i/250, i%250), Per: 1 + i%5, Kind: kind})
	}
	hs := handshakestream.Stream(rng, t0, 1, ps...)
	b.ResetTimer()
	for i := range b.N {
		at := t0.Add(time.Duration(i) * time.Minute)
		m.mu.Lock()
		for _, h := range hs {
			n := m.networkFor(h.Client.Addr())
			t := n.bucket(m.cur)
			if stallKind(&h) != notStall {
				t.stallDown++
			} else {
				t.completed++
			}
		}
		m.mu.Unlock()
		m.Advance(at.Add(time.Minute))
	}
}

// TestAlertOrder: alerts that fire in the same evaluation come out in the
// order of their networks' keys, the same on every run (a replayed
// capture's summary and the Alertmanager batch do not shuffle).
func TestAlertOrder(t *testing.T) {
	var first []string
	for try := range 10 {
		m, rec := newMonitor(Config{})
		run(m, newRand(21), t0, 1,
			path{Prefix: "198.51.100", Per: 12, Kind: "down"}, path{Prefix: "192.0.2", Per: 20, Kind: "s2"},
			path{Prefix: "198.51.101", Per: 12, Kind: "down"}, path{Prefix: "203.0.113", Per: 35, Kind: "clean"},
			path{Prefix: "100.64.0", Per: 30, Kind: "clean"})
		var got []string
		for _, a := range rec.alerts {
			got = append(got, a.Network)
		}
		if try == 0 {
			first = got
			if len(got) != 3 || got[0] != "192.0.2.0/24" || got[1] != "198.51.100.0/24" || got[2] != "198.51.101.0/24" {
				t.Fatalf("alerts for %v, want the three failing networks in key order", got)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("run %d: alerts for %v, run 0 for %v", try, got, first)
		}
	}
}
