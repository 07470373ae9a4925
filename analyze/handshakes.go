package analyze

import (
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// The handshakes a capture lists are classified by package flow's tracker,
// the one `mtuscope watch` uses, so a capture gives the same outcomes to
// both commands. The analyzer's own flow table runs beside it for what the
// tracker does not keep: every wire packet's fate, the byte ranges the
// pairing of two captures needs, the ladder diagrams.

// tracked collects one capture's handshakes from the tracker.
type tracked struct {
	tr *flow.Tracker
	// list holds the handshakes kept, in chunks (no copying as it grows).
	list     [][]flow.Handshake
	n, max   int
	outcomes map[diagnose.Outcome]int
}

const trackedChunk = 1024

func newTracked(lim Limits) *tracked {
	t := &tracked{max: lim.MaxRecords, outcomes: map[diagnose.Outcome]int{}}
	t.tr = flow.NewTracker(flow.Config{MaxFlows: lim.MaxFlows, Emit: func(h flow.Handshake) {
		t.outcomes[h.Outcome]++
		if t.n >= t.max {
			return
		}
		if len(t.list) == 0 || len(t.list[len(t.list)-1]) == trackedChunk {
			t.list = append(t.list, make([]flow.Handshake, 0, trackedChunk))
		}
		t.list[len(t.list)-1] = append(t.list[len(t.list)-1], h)
		t.n++
	}})
	return t
}

func (t *tracked) packet(p *packet.Packet, ts time.Time) { t.tr.Packet(p, ts) }

func (t *tracked) end(last time.Time) { t.tr.Flush(last) }

// hsKey joins a tracker handshake to the analyzer's record of the flow.
type hsKey struct{ client, server netip.AddrPort }

// recordIndex finds the analyzer's record of a flow by its endpoints and
// start.
type recordIndex map[hsKey][]*record

func indexRecords(rs ...[]*record) recordIndex {
	ix := recordIndex{}
	for _, list := range rs {
		for _, r := range list {
			k := hsKey{r.hs.Client, r.hs.Server}
			ix[k] = append(ix[k], r)
		}
	}
	return ix
}

// find returns the record of the flow between client and server that
// started closest to start (within a second), or nil.
func (ix recordIndex) find(client, server netip.AddrPort, start time.Time) *record {
	var best *record
	bestD := time.Second
	for _, r := range ix[hsKey{client, server}] {
		d := r.hs.Start.Sub(start)
		if d < 0 {
			d = -d
		}
		if d <= bestD {
			best, bestD = r, d
		}
	}
	return best
}

// joinHandshakes lists the tracker's handshakes with what the analyzer
// found of each flow: lost packets, and in pair mode the client's address
// at the server. It returns the list and, for the ladders, the records of
// the stalled ones.
func joinHandshakes(t *tracked, ix recordIndex) ([]Handshake, []*record) {
	out := make([]Handshake, 0, t.n)
	var stalled []*record
	for _, h := range t.all() {
		x := Handshake{Handshake: h}
		if r := ix.find(h.Client, h.Server, h.Start); r != nil {
			x.LostPackets = r.lostN
			if r.srv != nil {
				c := r.srv.client
				x.ClientAtServer = &c
			}
			if (h.Outcome == diagnose.StalledClientHello || h.Outcome == diagnose.StalledServerFlight) && r.f != nil {
				r.tracked = h.Outcome
				stalled = append(stalled, r)
			}
		}
		out = append(out, x)
	}
	return out, stalled
}

func total(m map[diagnose.Outcome]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// all yields the handshakes kept, in order.
func (t *tracked) all() func(func(int, flow.Handshake) bool) {
	return func(yield func(int, flow.Handshake) bool) {
		i := 0
		for _, c := range t.list {
			for _, h := range c {
				if !yield(i, h) {
					return
				}
				i++
			}
		}
	}
}
