package analyze

import (
	"math"
	"sort"
	"time"
)

// Matching describes how the flows of two captures were paired.
type Matching struct {
	// BySequence flows were paired by their initial sequence numbers (both
	// ends' ISNs equal: no NAT, or a NAT that rewrites addresses and ports
	// only); ByTimestamp by the SYN's TCP timestamp, when a NAT also
	// rewrote the sequence numbers (offsets are relative to each capture's
	// ISN, so a shift cancels out).
	BySequence  int `json:"by_sequence"`
	ByTimestamp int `json:"by_timestamp"`
	// UnmatchedClient and UnmatchedServer are the flows (with their SYN)
	// found in one capture only.
	UnmatchedClient int `json:"unmatched_client"`
	UnmatchedServer int `json:"unmatched_server"`
	// AddressRewritten, PortRewritten and SequenceShifted count matched
	// flows whose client address, client port or sequence numbers differ
	// between the captures: a NAT between them.
	AddressRewritten int `json:"address_rewritten"`
	PortRewritten    int `json:"port_rewritten"`
	SequenceShifted  int `json:"sequence_shifted"`
	// ClockOffsetMS is the server capture's clock minus the client
	// capture's, estimated from the SYN and SYN-ACK of the flow with the
	// shortest round trip (RTTMS); ClockOffsetKnown is false when no flow
	// had both in both captures.
	ClockOffsetMS    float64 `json:"clock_offset_ms"`
	RTTMS            float64 `json:"rtt_ms"`
	ClockOffsetKnown bool    `json:"clock_offset_known"`
	// Note says what could not be matched and why, when something was not.
	Note string `json:"note,omitempty"`
}

// pair is one flow seen in both captures.
type pair struct {
	c, s *record
	byTS bool
}

// matching is the result of pairing two captures' flows.
type matching struct {
	pairs                            []*pair
	unmatchedClient, unmatchedServer []*record
	offset, tolerance                int64
	rtt                              int64
	offsetKnown                      bool
	byTS                             int
	// steps counts the candidates looked at while pairing (for the test
	// that pairing stays linear).
	steps int
}

type isnKey struct{ c, s uint32 }

// tsKey is a SYN's TCP timestamp and the flow's address family.
type tsKey struct {
	ts     uint32
	family uint8
}

// queue is the server-side records with one key, in capture order, and
// the first that may still be unused: taking the first unused record
// moves next past the used ones, once each, so that pairing stays
// linear however many flows share a key.
type queue struct {
	rs   []*record
	next int
}

// take returns the first record of q not yet used, and marks it used.
func (q *queue) take(m *matching, used map[*record]bool) *record {
	if q == nil {
		return nil
	}
	for ; q.next < len(q.rs); q.next++ {
		m.steps++
		if r := q.rs[q.next]; !used[r] {
			used[r] = true
			q.next++
			return r
		}
	}
	return nil
}

// add appends r to the queue of key k in qs.
func add[K comparable](qs map[K]*queue, k K, r *record) {
	q := qs[k]
	if q == nil {
		q = &queue{}
		qs[k] = q
	}
	q.rs = append(q.rs, r)
}

// match pairs the flows of a client-side and a server-side capture: each
// client flow, in capture order, with the first unused server flow with
// both its ISNs; else with the client's ISN (a SYN-ACK in one capture
// only); else, for a NAT that rewrites sequence numbers, with its SYN's
// TCP timestamp (same family, the server side's SYN with an MSS).
func match(cl, sv []*record) *matching {
	m := &matching{}
	bySeq := map[isnKey]*queue{}
	byCISN := map[uint32]*queue{}         // every flow with the client ISN
	byCISNNoSynAck := map[uint32]*queue{} // those whose SYN-ACK was not seen
	byTS := map[tsKey]*queue{}
	used := map[*record]bool{}
	for _, r := range sv {
		f := r.f
		if !f.syn.seen {
			continue
		}
		if f.synAck.seen {
			add(bySeq, isnKey{f.syn.isn, f.synAck.isn}, r)
		} else {
			add(byCISNNoSynAck, f.syn.isn, r)
		}
		add(byCISN, f.syn.isn, r)
		if f.syn.tsOK && f.syn.tsVal != 0 && f.syn.mss != 0 {
			add(byTS, tsKey{f.syn.tsVal, f.family}, r)
		}
	}
	for _, r := range cl {
		f := r.f
		if !f.syn.seen {
			m.unmatchedClient = append(m.unmatchedClient, r)
			continue
		}
		var s *record
		if f.synAck.seen {
			s = bySeq[isnKey{f.syn.isn, f.synAck.isn}].take(m, used)
		}
		if s == nil {
			// A SYN-ACK seen in both captures would have paired by both
			// ISNs: by the client's alone only when one capture lacks it.
			if f.synAck.seen {
				s = byCISNNoSynAck[f.syn.isn].take(m, used)
			} else {
				s = byCISN[f.syn.isn].take(m, used)
			}
		}
		p := &pair{c: r}
		if s == nil && f.syn.tsOK && f.syn.tsVal != 0 {
			s = byTS[tsKey{f.syn.tsVal, f.family}].take(m, used)
			p.byTS = s != nil
		}
		if s == nil {
			m.unmatchedClient = append(m.unmatchedClient, r)
			continue
		}
		p.s = s
		if p.byTS {
			m.byTS++
		}
		m.pairs = append(m.pairs, p)
	}
	for _, r := range sv {
		if !used[r] {
			m.unmatchedServer = append(m.unmatchedServer, r)
		}
	}
	m.clock()
	return m
}

// clock estimates the server capture's clock minus the client capture's,
// NTP-style: from the flow whose SYN and SYN-ACK are in both captures with
// the shortest round trip, assuming equal delays both ways.
func (m *matching) clock() {
	best := int64(math.MaxInt64)
	for _, p := range m.pairs {
		c, s := p.c.f, p.s.f
		if !c.syn.seen || !s.syn.seen {
			continue
		}
		if !c.synAck.seen || !s.synAck.seen {
			if !m.offsetKnown && best == math.MaxInt64 {
				m.offset = s.syn.t - c.syn.t // the one-way delay is in it
			}
			continue
		}
		a := s.syn.t - c.syn.t       // offset + delay up
		b := c.synAck.t - s.synAck.t // delay down - offset
		rtt := a + b
		if rtt < 0 || rtt >= best {
			continue
		}
		best, m.offset, m.rtt, m.offsetKnown = rtt, (a-b)/2, rtt, true
	}
	m.tolerance = m.rtt/2 + int64(time.Millisecond)
	if !m.offsetKnown {
		m.tolerance = int64(50 * time.Millisecond)
	}
}

func (m *matching) report() Matching {
	r := Matching{
		BySequence: len(m.pairs) - m.byTS, ByTimestamp: m.byTS,
		UnmatchedClient: len(m.unmatchedClient), UnmatchedServer: len(m.unmatchedServer),
		ClockOffsetMS: float64(m.offset) / 1e6, RTTMS: float64(m.rtt) / 1e6, ClockOffsetKnown: m.offsetKnown,
	}
	for _, p := range m.pairs {
		c, s := p.c.f, p.s.f
		if c.client.Addr() != s.client.Addr() {
			r.AddressRewritten++
		}
		if c.client.Port() != s.client.Port() {
			r.PortRewritten++
		}
		if c.syn.isn != s.syn.isn || (c.synAck.seen && s.synAck.seen && c.synAck.isn != s.synAck.isn) {
			r.SequenceShifted++
		}
	}
	if r.UnmatchedClient > 0 || r.UnmatchedServer > 0 {
		r.Note = "flows in one capture only: not in the other capture (its filter or time span), their SYN missed, " +
			"or a NAT that rewrites sequence numbers and strips TCP timestamps (not matched); they are judged from their own capture"
	}
	return r
}

// judge decides, segment by segment, what became of each wire packet of a
// paired flow: a packet the sender's capture holds is delivered when the
// receiver's capture holds its bytes in a segment that arrived after it was
// sent (and before any later transmission of the same bytes could have
// arrived), lost otherwise. Byte ranges, not packets, are compared, so
// super-segments on the sending host and GRO-merged segments on the
// receiving host match the wire packets they stand for.
//
// cEnd and sEnd are the last packet times of the client and server
// captures: a packet sent too late for the receiver's capture to hold it
// stays unknown.
func (p *pair) judge(offset, tol, cEnd, sEnd int64) *record {
	var wire [2][]wirePkt
	for di := range 2 {
		snd, rcv, rend := p.c.f, p.s.f, sEnd
		conv := -offset // receiver (server) clock to sender (client) clock
		if di == down {
			snd, rcv, rend, conv = p.s.f, p.c.f, cEnd, offset
		}
		ws := snd.chunks(di)
		rlast := rend + conv
		rtt := 2 * max(tol-int64(time.Millisecond), 0)
		if back := snd.d[1-di].last; back > rcv.last+conv+rtt+int64(100*time.Microsecond) {
			// The sender saw the receiver's packets after the receiver's
			// capture stopped showing this flow: that capture missed the
			// flow's end, so what was sent after it is unknown.
			rlast = min(rlast, rcv.last+conv)
		}
		matchArrivals(ws, rcv.d[di].segs, conv, tol)
		creditAcked(ws, &rcv.d[di], conv, tol)
		creditAcked(ws, &snd.d[di], 0, tol) // acknowledgements as they reached the sender
		for i := range ws {
			if ws[i].status == unknown && ws[i].t+tol < rlast {
				ws[i].status = lost
			}
		}
		snd.markExplained(di, ws)
		wire[di] = ws
	}
	r := classify(p.c.f, wire)
	r.srv = p.s.f
	r.paired = true
	return &r
}

// matchArrivals marks the sent packets ws (sorted by time) that arrivals
// (receiver's segments, times converted by adding conv) delivered: each
// arrival is credited to the latest transmissions of its bytes sent before
// it arrived, within tol.
func matchArrivals(ws []wirePkt, arrivals []seg, conv, tol int64) {
	rest := make([]span, 0, 4)
	for _, a := range arrivals {
		at := a.t + conv
		rest = append(rest[:0], a.span)
		i := sort.Search(len(ws), func(i int) bool { return ws[i].t > at+tol }) - 1
		for ; i >= 0 && len(rest) > 0; i-- {
			w := &ws[i]
			hit := false
			next := rest[:0:0]
			for _, r := range rest {
				if !r.Overlaps(w.span) {
					next = append(next, r)
					continue
				}
				hit = true
				if r.Start < w.Start {
					next = append(next, span{Start: r.Start, End: w.Start})
				}
				if w.End < r.End {
					next = append(next, span{Start: w.End, End: r.End})
				}
			}
			rest = append(rest[:0], next...)
			if hit && w.status != delivered {
				w.status, w.arrival = delivered, at
			}
		}
	}
}

// creditAcked marks delivered the packets the receiver acknowledged
// (as one of the captures shows) although its capture does not hold them
// (it missed them: a capture drop, not a network loss): each
// acknowledgement is credited to the latest transmission of the bytes
// before it.
func creditAcked(ws []wirePkt, rcv *dirState, conv, tol int64) {
	for i := range ws {
		w := &ws[i]
		if w.status == delivered {
			continue
		}
		ta := rcv.ackTime(w.span)
		if ta == 0 || ta+conv+tol < w.t {
			continue
		}
		later := false
		for j := i + 1; j < len(ws); j++ {
			if ws[j].t > w.t && ws[j].t <= ta+conv+tol && ws[j].Overlaps(w.span) {
				later = true
				break
			}
		}
		if !later {
			w.status = delivered
		}
	}
}
