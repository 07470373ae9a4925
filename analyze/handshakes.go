package analyze

import (
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// The handshakes a capture lists are classified by package flow's tracker,
// the one `mtuscope watch` uses, so a capture gives the same outcomes to
// both commands. The tracker hands each handshake to the analyzer's table
// with the flow it belongs to (flow.Observer), so a handshake and what the
// analyzer found of its flow (every wire packet's fate, the byte ranges
// the pairing of two captures needs, the ladder diagrams) are one record.

// tracked collects one capture's handshakes as the tracker emits them.
type tracked struct {
	// list holds the handshakes kept, in chunks (no copying as it grows).
	list     [][]flow.Handshake
	n, max   int
	outcomes map[diagnose.Outcome]int
	// paths holds every handshake's figures by path (listed or not).
	paths  map[pathKey]*hsFigures
	family map[pathKey]int
}

const trackedChunk = 1024

func newTracked(lim Limits) *tracked {
	return &tracked{max: lim.MaxRecords, outcomes: map[diagnose.Outcome]int{}, paths: map[pathKey]*hsFigures{}, family: map[pathKey]int{}}
}

// add counts a handshake and keeps it when there is room; it returns its
// index in the list, -1 when it was not kept.
func (t *tracked) add(h *flow.Handshake) int32 {
	t.outcomes[h.Outcome]++
	t.foldPath(h)
	if t.n >= t.max {
		return -1
	}
	if len(t.list) == 0 || len(t.list[len(t.list)-1]) == trackedChunk {
		t.list = append(t.list, make([]flow.Handshake, 0, trackedChunk))
	}
	t.list[len(t.list)-1] = append(t.list[len(t.list)-1], *h)
	t.n++
	return int32(t.n - 1)
}

// byHandshake indexes records by their handshake's place in t's list.
func (t *tracked) byHandshake(rs ...[]*record) []*record {
	ix := make([]*record, t.n)
	for _, list := range rs {
		for _, r := range list {
			if r.hsIndex >= 0 && int(r.hsIndex) < t.n {
				ix[r.hsIndex] = r
			}
		}
	}
	return ix
}

// joinHandshakes lists the tracker's handshakes with what the analyzer
// found of each flow (ix, by byHandshake): lost packets, and in pair mode
// the client's address at the server. It returns the list and, for the
// ladders, the records of the stalled ones.
func joinHandshakes(t *tracked, ix []*record) ([]Handshake, []*record) {
	out := make([]Handshake, 0, t.n)
	var stalled []*record
	for i, h := range t.all() {
		out = append(out, Handshake{Handshake: h})
		x := &out[len(out)-1]
		r := ix[i]
		if r == nil {
			continue
		}
		x.LostPackets = r.lostN
		if r.srv != nil {
			cs := r.srv.client
			x.ClientAtServer = &cs
		}
		if r.stalled() && r.f != nil {
			stalled = append(stalled, r)
		}
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

// hsFigures are what the tracker's handshakes on one path showed: how
// many there were and completed, the largest stalled server flight, and
// the first handshakes' outcomes as tests, for a path where none
// completed.
type hsFigures struct {
	handshakes, completed, flight int
	tests                         []diagnose.SegmentTest
}

// maxPathTests bounds the handshakes kept as tests per path.
const maxPathTests = 32

func (x *hsFigures) add(h *flow.Handshake) {
	x.handshakes++
	switch h.Outcome {
	case diagnose.Completed:
		x.completed++
	case diagnose.StalledServerFlight:
		x.flight = max(x.flight, h.FlightBytes)
	}
	if h.Outcome == diagnose.NotTLS && h.HelloBytes == 0 {
		// No ClientHello: a protocol of its own (SMTP's banner), not a
		// TLS handshake that failed.
		return
	}
	if len(x.tests) < maxPathTests {
		x.tests = append(x.tests, diagnose.SegmentTest{UpSize: h.Up.Delivered, DownSize: h.Down.Delivered,
			Up: diagnose.Untested, Down: diagnose.Untested, Outcome: h.Outcome, Detail: h.Detail})
	}
}

func (x *hsFigures) merge(o *hsFigures) {
	x.handshakes += o.handshakes
	x.completed += o.completed
	x.flight = max(x.flight, o.flight)
	for _, t := range o.tests {
		if len(x.tests) < maxPathTests {
			x.tests = append(x.tests, t)
		}
	}
}

// foldPath counts a handshake on its path (the tracker's goroutine: the
// summary is the analyzer's, merged in by addTracked once both are done).
func (t *tracked) foldPath(h *flow.Handshake) {
	k := pathKey{h.Client.Addr(), h.Server.Addr()}
	p := t.paths[k]
	if p == nil {
		if len(t.paths) >= maxPaths {
			k = pathKey{}
			if p = t.paths[k]; p == nil {
				p = &hsFigures{}
				t.paths[k] = p
				t.family[k] = h.Family
			}
		} else {
			p = &hsFigures{}
			t.paths[k] = p
			t.family[k] = h.Family
		}
	}
	p.add(h)
}

// addTracked folds a capture's handshakes, as its tracker emitted them,
// into their paths: the verdict counts what watch would count, and
// nothing the tracker never emitted (half-open connections, a scan).
func (s *summary) addTracked(t *tracked) {
	for k, p := range t.paths {
		s.path(k.client, k.server, t.family[k]).merge(p)
	}
	for o, n := range t.outcomes {
		s.outcomes[o] += n
	}
}

// addHandshake folds one handshake found only in the server capture.
func (s *summary) addHandshake(h *flow.Handshake) {
	s.path(h.Client.Addr(), h.Server.Addr(), h.Family).add(h)
	s.outcomes[h.Outcome]++
}
