package monitor

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// network.sum over a span shorter than the ring adds up to what a pass
// over every slot of every network gives, for every start within the
// window.
func TestNetworkSum(t *testing.T) {
	m, _ := newMonitor(Config{})
	rng := rand.New(rand.NewPCG(12, 13))
	var ps []path
	for i := range 30 {
		ps = append(ps, path{Prefix: fmt.Sprintf("10.2.%d", i), Per: 1 + rng.IntN(9), Kind: []string{"clean", "s2", "down"}[i%3]})
	}
	for min := range 12 {
		run(m, rng, t0.Add(time.Duration(min)*time.Minute), 1, ps[:min*3]...)
		b := m.cur - 1
		for from := b - int64(m.cfg.Window) + 1; from <= b; from++ {
			var want, sums tally
			for _, n := range m.nets {
				for _, x := range n.ring {
					if x.index >= from && x.index <= b {
						want.add(x)
					}
				}
				sums.add(n.sum(from, b))
			}
			if sums != want {
				t.Fatalf("bucket %d from %d: the networks' sums %+v, want %+v", b, from, sums, want)
			}
		}
	}
}

// Churn: 2,000 networks new in every one-minute bucket (from real
// addresses: verified), the table full. Each evaluation used to pass over
// every network for each network first seen within the window: 64 s for
// these ten buckets, 1.8 s after.
func BenchmarkNetworkChurn(b *testing.B) {
	for range b.N {
		m, _ := newMonitor(Config{})
		k := 0
		for min := range 10 {
			at := t0.Add(time.Duration(min) * time.Minute)
			for i := range 2000 {
				k++
				a := netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 1})
				m.Observe(flow.Handshake{Client: netip.AddrPortFrom(a, 1234), Server: server, Family: 4, Verified: true,
					Start: at, End: at.Add(time.Duration(i) * time.Millisecond), Outcome: diagnose.Timeout})
			}
		}
		m.Advance(t0.Add(11 * time.Minute))
	}
}
