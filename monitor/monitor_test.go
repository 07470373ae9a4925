package monitor

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/internal/handshakestream"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

var server = handshakestream.Server

// path is a synthetic client network (see internal/handshakestream).
type path = handshakestream.Network

// run feeds minutes of traffic from the paths into m, in time order, and
// closes the last bucket.
func run(m *Monitor, rng *rand.Rand, from time.Time, minutes int, paths ...path) {
	for _, h := range handshakestream.Stream(rng, from, minutes, paths...) {
		m.Observe(h)
	}
	m.Advance(from.Add(time.Duration(minutes) * time.Minute))
}

type recorder struct{ alerts []Alert }

func (r *recorder) notify(a Alert) { r.alerts = append(r.alerts, a) }

func (r *recorder) firing() map[string]Alert {
	f := map[string]Alert{}
	for _, a := range r.alerts {
		key := a.Kind + "/" + a.Network
		if a.State == Firing {
			f[key] = a
		} else {
			delete(f, key)
		}
	}
	return f
}

func (r *recorder) count(kind, state string) int {
	n := 0
	for _, a := range r.alerts {
		if a.Kind == kind && a.State == state {
			n++
		}
	}
	return n
}

func newMonitor(cfg Config) (*Monitor, *recorder) {
	r := &recorder{}
	return New(cfg, Options{Notify: r.notify, PageURL: "https://diag.example/"}), r
}

// S11-like: one S2 network, one downstream-only, one clean, one at 1.5%
// loss. The two faulty ones alert with their direction and a bracket
// around 1400, the others never; removing the faults resolves both.
func TestCustomers(t *testing.T) {
	m, rec := newMonitor(Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	s2 := path{Prefix: "192.0.2", Per: 12, Kind: "s2"}
	down := path{Prefix: "198.51.100", Per: 12, Kind: "down"}
	clean := path{Prefix: "203.0.113", Per: 30, Kind: "clean"}
	lossy := path{Prefix: "100.64.0", Per: 30, Kind: "lossy", Loss: 0.015}

	// The first minute alone must be enough (one evaluation interval).
	run(m, rng, t0, 1, s2, down, clean, lossy)
	f := rec.firing()
	if len(f) != 2 {
		t.Fatalf("after one minute: firing %v, want the S2 and downstream networks", keys(f))
	}
	for key, want := range map[string]diagnose.Direction{"network/192.0.2.0/24": diagnose.Both, "network/198.51.100.0/24": diagnose.Downstream} {
		a, ok := f[key]
		if !ok {
			t.Fatalf("no alert %s: %v", key, keys(f))
		}
		d := a.Diagnosis
		if d.Verdict != diagnose.VerdictBlackhole || d.Direction != want {
			t.Errorf("%s: %s %s, want pmtud_blackhole %s", key, d.Verdict, d.Direction, want)
		}
		if d.PathMTU <= 0 || d.PathMTU > 1400 {
			t.Errorf("%s: path MTU %d, want a lower bound at or below 1400", key, d.PathMTU)
		}
		if a.PageURL != "https://diag.example/" || len(d.Fixes) == 0 || d.Fixes[0].Code != "clamp_mss" {
			t.Errorf("%s: page %q fixes %+v", key, a.PageURL, d.Fixes)
		}
	}
	run(m, rng, t0.Add(time.Minute), 9, s2, down, clean, lossy)
	if n := len(rec.alerts); n != 2 {
		t.Fatalf("while faults last: %d alert changes, want the 2 firings: %+v", n, rec.alerts)
	}
	snap := m.Snapshot(false)
	for _, ns := range snap.Networks {
		b := ns.PathMTU
		switch ns.Network {
		case "192.0.2.0/24":
			if !(b.UpDelivered <= 1400 && b.UpLost > 1400 && b.DownDelivered <= 1400 && b.DownLost > 1400) {
				t.Errorf("S2 bracket %+v does not hold 1400 both ways", b)
			}
		case "198.51.100.0/24":
			if !(b.DownDelivered <= 1400 && b.DownLost > 1400) || b.UpLost != 0 {
				t.Errorf("downstream bracket %+v", b)
			}
		default:
			if ns.Alert || ns.Verdict != diagnose.VerdictOK {
				t.Errorf("%s: alert %v verdict %s", ns.Network, ns.Alert, ns.Verdict)
			}
			if b := ns.PathMTU; b.UpLost != 0 || b.DownLost != 0 {
				t.Errorf("%s: bracket %+v from isolated stalls", ns.Network, b)
			}
		}
	}
	// Faults removed: both resolve, with hysteresis (not in the first clean minute).
	fixed := []path{{Prefix: "192.0.2", Per: 12, Kind: "clean"}, {Prefix: "198.51.100", Per: 12, Kind: "clean"}, clean, lossy}
	run(m, rng, t0.Add(10*time.Minute), 1, fixed...)
	if n := rec.count(KindNetwork, Resolved); n != 0 {
		t.Fatalf("resolved after one clean minute: %d, want hysteresis", n)
	}
	run(m, rng, t0.Add(11*time.Minute), 5, fixed...)
	if n := rec.count(KindNetwork, Resolved); n != 2 {
		t.Fatalf("resolved %d, want 2: %+v", n, rec.alerts)
	}
	for _, a := range rec.alerts {
		if a.State == Resolved && (a.EndsAt.IsZero() || a.Reason != "recovered" || !a.EndsAt.After(a.StartsAt)) {
			t.Errorf("resolution %+v", a)
		}
	}
	if len(rec.firing()) != 0 || rec.count(KindServer, Firing) != 0 {
		t.Errorf("left firing: %v", keys(rec.firing()))
	}
}

func keys(m map[string]Alert) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	return k
}

// A network that was healthy before its path broke: the alert's bracket
// and fixes come from the stalled handshakes, not from the full-size
// packets its handshakes delivered before.
func TestFaultAfterHealth(t *testing.T) {
	m, rec := newMonitor(Config{})
	rng := newRand(12)
	clean := path{Prefix: "203.0.113", Per: 40, Kind: "clean"}
	run(m, rng, t0, 4, path{Prefix: "192.0.2", Per: 12, Kind: "clean"}, clean)
	run(m, rng, t0.Add(4*time.Minute), 2, path{Prefix: "192.0.2", Per: 12, Kind: "s2"}, clean)
	if len(rec.alerts) != 1 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	d := rec.alerts[0].Diagnosis
	if d.PathMTU <= 0 || d.PathMTU > 1400 || d.Direction != diagnose.Both {
		t.Errorf("path MTU %d direction %s, want a lower bound below 1400, both", d.PathMTU, d.Direction)
	}
	for _, ns := range m.Snapshot(false).Networks {
		if b := ns.PathMTU; ns.Network == "192.0.2.0/24" && !(b.UpDelivered <= 1400 && b.UpLost > 1400 && b.DownDelivered <= 1400 && b.DownLost > 1400) {
			t.Errorf("bracket %+v does not hold 1400", b)
		}
	}
}

// Ten stalled handshakes and none completed, while the others complete,
// alert at the close of the bucket they fall in.
func TestTenStallsOneInterval(t *testing.T) {
	m, rec := newMonitor(Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	run(m, rng, t0, 1, path{Prefix: "192.0.2", Per: 10, Kind: "down"}, path{Prefix: "203.0.113", Per: 40, Kind: "clean"})
	if rec.count(KindNetwork, Firing) != 1 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	if a := rec.alerts[0]; !a.StartsAt.Equal(t0) || a.Stats.Handshakes != 10 || a.Stats.Completed != 0 {
		t.Errorf("alert %+v", a)
	}
	// Nine are not enough in one bucket? They are: the minimum is five
	// stalls. Four never alert, however clean the rest.
	m2, rec2 := newMonitor(Config{})
	run(m2, rng, t0, 10, path{Prefix: "192.0.2", Per: 4, Kind: "down"}, path{Prefix: "203.0.113", Per: 40, Kind: "clean"})
	if len(rec2.alerts) != 0 && rec2.alerts[0].Stats.Scope != "window" {
		t.Errorf("four stalls a minute alerted in one bucket: %+v", rec2.alerts[0])
	}
}

// On a quiet server (eight handshakes a minute from the others) ten
// stalls in one minute still alert at the end of that minute: the
// others' rate comes from the window when one bucket holds too few.
func TestQuietServer(t *testing.T) {
	m, rec := newMonitor(Config{})
	rng := newRand(13)
	quiet := path{Prefix: "203.0.113", Per: 8, Kind: "clean"}
	run(m, rng, t0, 4, path{Prefix: "192.0.2", Per: 1, Kind: "clean"}, quiet)
	if len(rec.alerts) != 0 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	run(m, rng, t0.Add(4*time.Minute), 1, path{Prefix: "192.0.2", Per: 10, Kind: "down"}, quiet)
	if len(rec.alerts) != 1 || rec.alerts[0].Stats.Scope != "bucket" || !rec.alerts[0].StartsAt.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("alerts %+v", rec.alerts)
	}
}

// A capture with a long quiet gap after the failing minute (two files
// from different days, say) still evaluates that minute.
func TestLongGap(t *testing.T) {
	m, rec := newMonitor(Config{})
	for _, h := range handshakestream.Stream(newRand(14), t0, 1, path{Prefix: "192.0.2", Per: 10, Kind: "down"},
		path{Prefix: "203.0.113", Per: 40, Kind: "clean"}) {
		m.Observe(h)
	}
	m.Observe(path{Prefix: "203.0.113", Kind: "clean"}.Handshake(newRand(15), 1, t0.Add(24*time.Hour)))
	// It fired for that minute, and closed for lack of traffic since.
	if len(rec.alerts) != 2 || !rec.alerts[0].StartsAt.Equal(t0) || rec.alerts[1].Reason != "no_traffic" {
		t.Fatalf("alerts %+v", rec.alerts)
	}
}

// A healthy network losing 1-2% of packets stalls a handshake now and
// then; over many seeds and hours it never alerts, nor does anyone else.
func TestLossyNeverAlerts(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		m, rec := newMonitor(Config{})
		rng := rand.New(rand.NewPCG(seed, 99))
		loss := 0.01 + 0.01*float64(seed%3)/2 // 1%, 1.5%, 2% of handshakes stall (more than such loss stalls)
		run(m, rng, t0, 60,
			path{Prefix: "100.64.0", Per: 5 + int(seed%40), Kind: "lossy", Loss: loss * 2},
			path{Prefix: "100.64.1", Per: 20, Kind: "lossy", Loss: loss},
			path{Prefix: "203.0.113", Per: 50, Kind: "clean"})
		if len(rec.alerts) != 0 {
			t.Fatalf("seed %d: %+v", seed, rec.alerts[0])
		}
	}
}

// Many small networks, each with a handshake now and then and one unlucky
// stall: none alerts.
func TestTinyNetworks(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		m, rec := newMonitor(Config{})
		rng := rand.New(rand.NewPCG(seed, 7))
		for min := 0; min < 30; min++ {
			at := t0.Add(time.Duration(min) * time.Minute)
			for k := 0; k < 40; k++ {
				m.Observe(path{Prefix: "203.0.113", Kind: "clean"}.Handshake(rng, k, at.Add(time.Duration(k)*time.Second)))
			}
			for n := 0; n < 60; n++ {
				p := path{Prefix: fmt.Sprintf("10.%d.%d", n/250, n%250), Kind: "clean"}
				if rng.IntN(20) == 0 {
					// the one unlucky failure: as bad as a black hole looks
					p.Kind = "down"
				}
				if rng.IntN(3) == 0 {
					m.Observe(p.Handshake(rng, n, at.Add(50*time.Second)))
				}
			}
		}
		m.Advance(t0.Add(31 * time.Minute))
		if len(rec.alerts) != 0 {
			t.Fatalf("seed %d: %+v", seed, rec.alerts[0])
		}
	}
}

// Two networks of four break after a clean start (the server's baseline
// at 100%): two network alerts, no server-wide one.
func TestHalfTheNetworksFail(t *testing.T) {
	m, rec := newMonitor(Config{})
	rng := newRand(16)
	clean := []path{{Prefix: "192.0.2", Per: 12, Kind: "clean"}, {Prefix: "198.51.100", Per: 12, Kind: "clean"},
		{Prefix: "203.0.113", Per: 15, Kind: "clean"}, {Prefix: "100.64.0", Per: 15, Kind: "clean"}}
	run(m, rng, t0, 2, clean...)
	broken := append([]path{{Prefix: "192.0.2", Per: 12, Kind: "s2"}, {Prefix: "198.51.100", Per: 12, Kind: "down"}}, clean[2:]...)
	run(m, rng, t0.Add(2*time.Minute), 3, broken...)
	if rec.count(KindServer, Firing) != 0 || rec.count(KindNetwork, Firing) != 2 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
}

// Every network failing at once is one server alert, no network alert,
// and it resolves when handshakes complete again.
func TestServerWideDrop(t *testing.T) {
	m, rec := newMonitor(Config{})
	rng := rand.New(rand.NewPCG(5, 6))
	var healthy, broken []path
	for i := 0; i < 20; i++ {
		healthy = append(healthy, path{Prefix: fmt.Sprintf("10.0.%d", i), Per: 6, Kind: "clean"})
		broken = append(broken, path{Prefix: fmt.Sprintf("10.0.%d", i), Per: 6, Kind: "down"})
	}
	run(m, rng, t0, 5, healthy...)
	run(m, rng, t0.Add(5*time.Minute), 3, broken...)
	if rec.count(KindServer, Firing) != 1 || rec.count(KindNetwork, Firing) != 0 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	run(m, rng, t0.Add(8*time.Minute), 4, healthy...)
	if rec.count(KindServer, Resolved) != 1 || rec.count(KindNetwork, Firing) != 0 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
}

// A flood of connections without a ClientHello, and of half-sent hellos
// that simply stop, each from its own network: forged (unverified), they
// make no network and count only apart; from real addresses (verified:
// a botnet), they churn the network table, which stays within its cap and
// still gives a failing network first seen amid the churn its own entry
// and its alert.
func TestFloodBounded(t *testing.T) {
	flood := func(m *Monitor, rng *rand.Rand, at time.Time, verified bool) {
		for i := 0; i < 5000; i++ {
			a := netip.AddrFrom4([4]byte{byte(rng.IntN(223) + 1), byte(rng.IntN(256)), byte(rng.IntN(256)), 1})
			h := flow.Handshake{Client: netip.AddrPortFrom(a, 1234), Server: server, Family: 4, Verified: verified,
				Start: at, End: at.Add(time.Duration(i) * time.Millisecond), Outcome: diagnose.NoClientHello}
			if i%2 == 0 {
				// a half-sent hello: the tracker's timeout, nothing lost
				h.Outcome, h.HelloBytes, h.HelloSegments = diagnose.Timeout, 1500, 1
				h.Up = flow.Bracket{Delivered: 600}
			}
			m.Observe(h)
		}
	}
	for _, verified := range []bool{false, true} {
		t.Run(fmt.Sprintf("verified=%v", verified), func(t *testing.T) {
			m, rec := newMonitor(Config{MaxNetworks: 100})
			rng := rand.New(rand.NewPCG(8, 9))
			for min := 0; min < 7; min++ {
				at := t0.Add(time.Duration(min) * time.Minute)
				flood(m, rng, at, verified)
				for i := 0; i < 30; i++ {
					m.Observe(path{Prefix: "203.0.113", Kind: "clean"}.Handshake(rng, i, at.Add(10*time.Second+time.Duration(i)*time.Second)))
				}
				if min >= 2 {
					for i := 0; i < 12; i++ {
						m.Observe(path{Prefix: "192.0.2", Kind: "s2"}.Handshake(rng, i, at.Add(10*time.Second+time.Duration(i)*3*time.Second)))
					}
				}
			}
			m.Advance(t0.Add(8 * time.Minute))
			e := m.Exported()
			t.Logf("tracked %d, folded %d, evicted %d, unverified %v, alerts %d", e.Tracked, e.Folded, e.Evicted, e.Unverified, len(rec.alerts))
			if f := rec.firing(); len(f) != 1 || f[KindNetwork+"/192.0.2.0/24"].State != Firing {
				t.Errorf("alerts %+v, want the failing network's alone", rec.alerts)
			}
			if e.Tracked > 100 || e.Folded != 0 {
				t.Errorf("tracked %d folded %d, want at most 100 networks, none folded", e.Tracked, e.Folded)
			}
			if got := e.Total[outcomeIndex(diagnose.Completed)]; got != 7*30 {
				t.Errorf("completed %d, want %d (the clean network's)", got, 7*30)
			}
			if verified != (e.Evicted > 0) || verified == (e.Unverified.Total() == 35000) {
				t.Errorf("evicted %d, unverified %d", e.Evicted, e.Unverified.Total())
			}
		})
	}
}

// Per-network series: at most TopN networks plus the alerting ones, and
// their counts plus other's add up to the totals.
func TestExportedBounded(t *testing.T) {
	m, rec := newMonitor(Config{TopN: 3})
	rng := rand.New(rand.NewPCG(10, 11))
	var ps []path
	for i := 0; i < 10; i++ {
		ps = append(ps, path{Prefix: fmt.Sprintf("10.1.%d", i), Per: 5 + i, Kind: "clean"})
	}
	ps = append(ps, path{Prefix: "192.0.2", Per: 6, Kind: "s2"})
	run(m, rng, t0, 4, ps...)
	if rec.count(KindNetwork, Firing) != 1 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	e := m.Exported()
	if len(e.Networks) != 4 {
		t.Errorf("%d networks exported, want top 3 + 1 alerting", len(e.Networks))
	}
	alerting := false
	for _, n := range e.Networks {
		alerting = alerting || (n.Network == "192.0.2.0/24" && n.Firing)
	}
	if !alerting {
		t.Errorf("alerting network not exported: %+v", e.Networks)
	}
	sum := e.Other
	for _, n := range e.Networks {
		for i := range sum {
			sum[i] += n.Counts[i]
		}
	}
	if sum != e.Total {
		t.Errorf("networks + other = %v, total %v", sum, e.Total)
	}
}

// Tiny checks of the statistics against known values.
func TestStats(t *testing.T) {
	near := func(a, b float64) bool { return a > b*0.999 && a < b*1.001 }
	if p := binomLowerTail(0, 10, 0.99); !near(p, 1e-20) {
		t.Errorf("P(X<=0 | 10, .99) = %g", p)
	}
	if p := binomLowerTail(3, 10, 0.5); !near(p, 176.0/1024) {
		t.Errorf("P(X<=3 | 10, .5) = %g", p)
	}
	if p := binomLowerTail(9000, 10000, 0.9); p < 0.4 || p > 0.6 {
		t.Errorf("P(X<=9000 | 10000, .9) = %g", p)
	}
	if w := wilsonLower(95, 100, 1.96); w < 0.888 || w > 0.889 {
		t.Errorf("wilson(95/100) = %g", w)
	}
	if s := shrink(0, 1, 0.9, 20); !near(s, 18.0/21) {
		t.Errorf("shrink = %g", s)
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }
