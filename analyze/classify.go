package analyze

import (
	"sort"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// tlsHead reads a TLS record header from the first bytes of a stream
// (tlswire.RecordStart): its content type and the record's whole length
// (header included).
func tlsHead(b []byte) (typ byte, total int, ok bool) {
	h, ok := tlswire.RecordStart(b)
	if !ok {
		return 0, 0, false
	}
	return h.Type, tlswire.RecordHeaderLen + h.Length, true
}

// tlsKind says whether a flow carries TLS, as far as its first bytes tell.
type tlsKind uint8

const (
	tlsUnknown tlsKind = iota // no client bytes at offset 0 were seen
	tlsYes
	tlsNo
)

// record is one finished flow: its handshake's outcome and what became of
// its wire packets in each direction.
type record struct {
	f    *flowState
	tls  tlsKind
	wire [2][]wirePkt
	// srv is the same flow in the server-side capture (pair mode), paired
	// says wire was judged by comparing the two captures.
	srv    *flowState
	paired bool
	// handshake says the flow counts as a TLS handshake attempt.
	handshake bool
	// lostN counts the flow's lost wire packets.
	lostN int
	// outcome is the outcome package flow's tracker gave the flow's
	// handshake ("" when it emitted none); hsIndex the handshake's place
	// in the capture's list (tracked), -1 none.
	outcome diagnose.Outcome
	hsIndex int32
}

// stalled reports whether the handshake stalled.
func (r *record) stalled() bool {
	return r.outcome == diagnose.StalledClientHello || r.outcome == diagnose.StalledServerFlight
}

// classify makes the record of a finished flow and the fate of its wire
// packets: the handshake's outcome is the tracker's; the analyzer counts
// the lost packets and reads whether the client spoke TLS first.
func classify(f *flowState, wire [2][]wirePkt) record {
	r := record{f: f, wire: wire, hsIndex: f.hs, outcome: f.outcome}
	for di := range 2 {
		for _, w := range wire[di] {
			if w.status == lost {
				r.lostN++
			}
		}
	}
	d := &f.d[up]
	typ, _, isTLS := tlsHead(d.head[:d.headLen])
	switch {
	case d.headLen >= 5 && (!isTLS || typ != tlswire.RecordHandshake):
		r.tls = tlsNo
	case isTLS:
		r.tls = tlsYes
	}
	return r
}

// sortFlows orders flows by their first packet, then by address, so that
// reports do not depend on map order.
func sortFlows(fs []*flowState) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].first != fs[j].first {
			return fs[i].first < fs[j].first
		}
		return fs[i].client.String() < fs[j].client.String()
	})
}
