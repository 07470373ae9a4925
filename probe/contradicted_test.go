package probe

import (
	"testing"

	"github.com/mtuscope/mtuscope/diagnose"
)

// TestContradicted: a failure at a size the path has carried (the floor,
// or at most the ladder's largest pass) marks the round congested; a
// failure above every pass is evidence. Under a CPU hog, probe beside the
// page test took "0 bytes of the server's flight arrived" at MSS 536 for a
// black hole at 576 (S3, S8).
func TestContradicted(t *testing.T) {
	fail := func(kind string, mss int) Handshake {
		return Handshake{Kind: kind, MSS: mss, Outcome: diagnose.StalledServerFlight}
	}
	for _, c := range []struct {
		name string
		h    Handshake
		want bool
	}{
		{"small fails at the floor", fail(KindSmall, 536), true},
		{"small fails below a downstream pass", fail(KindSmall, 1300), true},
		{"small fails above every pass", fail(KindSmall, 1400), false},
		{"large fails below an upstream pass", fail(KindLarge, 1200), true},
		{"large fails above the upstream pass", fail(KindLarge, 1250), false},
		{"sweep failures are the sweep's", fail(KindSweep, 536), false},
		{"a pass contradicts nothing", Handshake{Kind: KindSmall, MSS: 536, Outcome: diagnose.Completed}, false},
	} {
		if got := contradicted([]Handshake{c.h}, 536, 1360, 1220); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// S15: a path that cannot read a split hello fails every large hello,
	// the floor's too, while the small ones pass: that is evidence, not
	// congestion (it used to double the timeout until the run ran out).
	if contradicted([]Handshake{fail(KindLarge, 536)}, 536, 1460, 0) {
		t.Errorf("a large hello failing at the floor before any passed marked the round congested")
	}
}
