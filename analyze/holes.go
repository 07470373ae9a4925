package analyze

import (
	"time"

	"github.com/mtuscope/mtuscope/flow"
)

// When a capture shows a loss. A missing acknowledgement is evidence of
// loss only when the capture went on long enough for it to come; a hole in
// what the receiver got is a loss only when its bytes never came or came
// back as a retransmission; bytes the receiver acknowledged were not lost,
// whatever the capture missed. (The same rule as package flow's: a
// capture that ends is no evidence.)

// minSettle is the least time a capture must go on after a transmission
// before its missing acknowledgement counts: Linux's shortest
// retransmission timeout (200 ms) and a delayed acknowledgement.
const minSettle = 250 * time.Millisecond

// rtt is the round trip the three-way handshake took (from the SYN to the
// client's acknowledgement of the SYN-ACK, so the same at either end), 0
// when the capture does not show it.
func (f *flowState) rtt() int64 {
	if f.syn.seen && f.ackT > f.syn.t {
		return f.ackT - f.syn.t
	}
	return 0
}

// settle is how long after a transmission the capture must go on for a
// missing acknowledgement to be a loss.
func (f *flowState) settle() int64 { return 2*f.rtt() + minSettle.Nanoseconds() }

// reorder is how late bytes may come and still be merely reordered: the
// sender cannot have heard of a hole and resent its bytes sooner than a
// round trip after the later bytes arrived (at least a millisecond).
func (f *flowState) reorder() int64 { return max(f.rtt(), time.Millisecond.Nanoseconds()) }

// holes appends to out (direction di's transmissions as this capture holds
// them) the wire packets its gaps show lost: the bytes the receiver did
// not have when later ones arrived. A part of a gap that
//   - came within a round trip of the later bytes was reordered, not lost;
//   - came later was lost and sent again: the lost packet's size is the
//     resent one's, as the capture shows it;
//   - never came but was acknowledged was missed by the capture, not the
//     network;
//   - never came and was never acknowledged was lost (the sender sends in
//     order: sent before the later bytes, it was no mere reordering) once
//     the capture holds a round trip past the later bytes, cut in
//     full-size segments of the size the sender was seen to use, or the
//     MSS. In the sender's own capture (its packets keep their initial hop
//     limit) a hole is the capture's: lost only when no acknowledgement
//     came while it could (settle).
func (f *flowState) holes(di int, out []wirePkt) []wirePkt {
	d := &f.d[di]
	if len(d.segs) == 0 {
		return out
	}
	hdr := int(d.segs[0].hdr)
	rtt, wait := f.rtt(), f.reorder()
	if d.hop == 0 || flow.LocalHop(d.hop) {
		wait = f.settle()
	}
	sent := len(out) // the capture's own transmissions; holes are appended after
	full := uint32(0)
	fullDone := false
	for _, g := range d.gaps {
		for pos := g.Start; pos < g.End && len(out) < maxChunks; {
			fill, next := -1, g.End
			for j := range out[:sent] {
				w := &out[j]
				switch {
				case w.Start <= pos && pos < w.End && (fill < 0 || w.t < out[fill].t):
					fill = j
				case w.Start > pos && w.Start < next:
					next = w.Start
				}
			}
			if fill >= 0 {
				w := &out[fill]
				piece := span{Start: pos, End: min(w.End, g.End)}
				pos = piece.End
				if w.t < g.t+f.reorder() {
					continue // carried before, or reordered: not lost
				}
				w.retrans = true
				out = append(out, wirePkt{span: piece, t: g.t, ipLen: w.ipLen - int(w.Len()) + int(piece.Len()), status: lost, inferred: true})
				continue
			}
			piece := span{Start: pos, End: next}
			pos = next
			if d.ackTime(piece) != 0 || f.capEnd-g.t < wait {
				continue // acknowledged (a capture drop), or the capture ended first
			}
			m := f.wireMSS(di, hdr, g.t)
			if !fullDone {
				full, fullDone = f.fullSize(di, rtt), true
			}
			if full > 0 && (m == 0 || full < m) {
				m = full
			}
			wireSplit(piece, m, func(c span) {
				if len(out) < maxChunks {
					out = append(out, wirePkt{span: c, t: g.t, ipLen: hdr + int(c.Len()), status: lost, inferred: true})
				}
			})
		}
	}
	return out
}

// fullSize is the largest payload the sender was seen to put in a segment
// that was followed at once (within half a round trip, or a millisecond)
// by the next bytes: a full-size segment of its own choosing, smaller than
// the MSS when its route has a smaller MTU. 0 when none was seen.
func (f *flowState) fullSize(di int, rtt int64) uint32 {
	segs := f.d[di].segs
	near := max(rtt/2, time.Millisecond.Nanoseconds())
	var n uint32
	for i, s := range segs {
		if s.Len() <= n {
			continue
		}
		for j, x := range segs {
			if j != i && x.Start == s.End && x.t-s.t < near && s.t-x.t < near {
				n = s.Len()
				break
			}
		}
	}
	return n
}
