package analyze

import (
	"cmp"
	"slices"

	"github.com/mtuscope/mtuscope/flow"
)

// status is what became of one wire packet.
type status uint8

const (
	unknown   status = iota // the capture cannot tell (it ended first)
	delivered               // it reached the other end
	lost                    // it never did
)

// wirePkt is one data packet as it was on the wire: a byte range of the
// stream and the IP packet's size. A super-segment of the sending host is
// several of them; so is a GRO-merged segment of the receiving host.
type wirePkt struct {
	span
	t       int64 // when the capture saw it (sent, or for an inferred one, when its absence showed)
	arrival int64 // pair mode: when the receiver's capture saw it, in the sender's clock; 0 unknown
	ipLen   int
	status  status
	// inferred: never seen in this capture (a hole in what the receiver
	// got), its size inferred from the MSS.
	inferred bool
	// retrans: a retransmission of bytes sent before.
	retrans bool
	// signalled: an ICMP too-big reported an MTU below its size to the
	// sender (seen in the sender's capture).
	signalled bool
	// recovered: its bytes got through later, in smaller packets.
	recovered bool
	// group numbers the capture's segment the packet was cut from (chunks
	// of one super-segment share it; 0 for an inferred packet);
	// withLarger says it was lost with a larger packet of its
	// super-segment: the sender's offload handed them on as one, and a
	// router that drops the large one drops them all.
	group      int32
	withLarger bool
	// merged: cut from a segment larger than the MSS seen at the
	// receiver (a super-segment handed on whole, or GRO): the bytes got
	// through, but in packets of unknown size, so it says nothing of sizes.
	merged bool
}

// silent reports whether the packet is a loss nothing explained: no ICMP
// too-big for it reached the sender, and its bytes never got through in
// smaller packets.
func (w *wirePkt) silent() bool {
	return w.status == lost && !w.signalled && !w.recovered && !w.withLarger
}

// maxChunks bounds the wire packets judged per direction of a flow.
const maxChunks = 512

// ipHeaderLen is the fixed IP header of a family.
func ipHeaderLen(family uint8) int {
	if family == 6 {
		return 40
	}
	return 20
}

// wireMSS is the payload size of a full wire segment in direction di for a
// segment with hdr bytes of headers sent at t: the MSS the peer offered,
// less the TCP options every segment carries, lowered by any ICMP too-big
// for this direction the sender had received by then.
func (f *flowState) wireMSS(di int, hdr int, t int64) uint32 {
	peer, own := f.synAck.mss, f.syn.mss
	if di == down {
		peer, own = f.syn.mss, f.synAck.mss
	}
	m := peer
	if own > 0 && (m == 0 || own < m) {
		m = own
	}
	if m == 0 {
		return 0
	}
	m -= hdr - ipHeaderLen(f.family) - 20
	for _, tb := range f.tooBig {
		if int(tb.dir) == di && tb.t <= t && tb.mtu > hdr && tb.mtu-hdr < m {
			m = tb.mtu - hdr
		}
	}
	if m <= 0 {
		return 0
	}
	return uint32(m)
}

// chunks splits a direction's transmissions into wire packets, in time
// order, marking retransmissions.
func (f *flowState) chunks(di int) []wirePkt { return f.chunksInto(di, nil) }

// chunksInto is chunks, appending to buf[:0] when it is large enough.
func (f *flowState) chunksInto(di int, buf []wirePkt) []wirePkt {
	d := &f.d[di]
	var out []wirePkt
	remote := d.hop != 0 && !flow.LocalHop(d.hop)
	n := len(d.gaps) * 4
	for _, s := range d.segs {
		if m := f.wireMSS(di, int(s.hdr), s.t); m > 0 {
			n += int((s.Len() + m - 1) / m)
		} else {
			n++
		}
	}
	if n = min(n, maxChunks); cap(buf) >= n {
		out = buf[:0]
	} else {
		out = make([]wirePkt, 0, n)
	}
	for i, s := range d.segs {
		m := f.wireMSS(di, int(s.hdr), s.t)
		merged := remote && m > 0 && s.Len() > m
		wireSplit(s.span, m, func(c span) {
			if len(out) < maxChunks {
				out = append(out, wirePkt{span: c, t: s.t, ipLen: int(s.hdr) + int(c.Len()), group: int32(i + 1), merged: merged})
			}
		})
	}
	if !d.inOrder() {
		sortByTime(out)
		for i := range out {
			for j := 0; j < i; j++ {
				if out[j].t < out[i].t && out[j].Overlaps(out[i].span) {
					out[i].retrans = true
					break
				}
			}
		}
	}
	return out
}

// ackTime is when direction d's bytes s were first acknowledged by the
// peer (cumulatively or selectively), 0 if never.
func (d *dirState) ackTime(s span) int64 {
	var t int64
	for _, a := range d.acks {
		if a.End >= s.End {
			t = a.t
			break
		}
	}
	for _, a := range d.sacks {
		if a.Start <= s.Start && s.End <= a.End && (t == 0 || a.t < t) {
			t = a.t
		}
	}
	return t
}

// judgeSingle decides from one capture what became of each wire packet of
// direction di: acknowledged (delivered) by the latest transmission before
// the acknowledgement, lost when retransmitted before any acknowledgement
// or never acknowledged at all; and, where this capture is the receiver's,
// the holes in what arrived are packets lost on the way, their sizes
// inferred from the MSS.
func (f *flowState) judgeSingle(di int, buf []wirePkt) []wirePkt {
	d := &f.d[di]
	out := f.chunksInto(di, buf)
	if d.inOrder() && len(d.gaps) == 0 && d.ackSet && d.ack >= d.maxEnd && len(d.sacks) == 0 {
		// The common case: every byte sent once, in order, and all of it
		// acknowledged.
		for i := range out {
			out[i].status = delivered
		}
		return out
	}
	for i := range out {
		c := &out[i]
		ta := d.ackTime(c.span)
		later := false
		for j := i + 1; j < len(out); j++ {
			if out[j].t > c.t && out[j].Overlaps(c.span) && (ta == 0 || out[j].t < ta) {
				later = true
				break
			}
		}
		switch {
		case ta != 0 && !later, ta != 0 && d.dsacked(c.span):
			c.status = delivered
		case ta == 0 && (f.capEnd-c.t < f.settle() || f.d[1-di].last <= c.t):
			// Still in flight when the capture ended, or the capture holds
			// nothing the receiver sent after it (a capture of one
			// direction, a receiver gone): its fate is unknown.
		case later || c.retrans || ta == 0 && d.sackedAfter(c.End):
			// retransmitted before any acknowledgement, or never
			// acknowledged while the receiver acknowledged later bytes
			c.status = lost
		}
	}
	out = f.holes(di, out)
	f.markExplained(di, out)
	sortByTime(out)
	return out
}

// markExplained flags the lost packets an ICMP too-big was sent about, and
// those whose bytes got through later in smaller packets.
func (f *flowState) markExplained(di int, ws []wirePkt) {
	largestLost := map[int32]int{}
	for _, w := range ws {
		if w.status == lost && w.group != 0 {
			largestLost[w.group] = max(largestLost[w.group], w.ipLen)
		}
	}
	for i := range ws {
		if w := &ws[i]; w.status == lost && w.group != 0 && w.ipLen < largestLost[w.group] {
			w.withLarger = true
		}
	}
	for i := range ws {
		w := &ws[i]
		if w.status != lost {
			continue
		}
		for _, tb := range f.tooBig {
			if int(tb.dir) == di && !tb.inherited && tb.mtu > 0 && tb.mtu < w.ipLen && tb.t >= w.t {
				w.signalled = true
			}
		}
		smaller, same := false, false
		for _, x := range ws {
			if x.status != delivered || x.t < w.t || !x.Overlaps(w.span) {
				continue
			}
			if x.ipLen < w.ipLen || x.merged {
				smaller = true // a merged one was resegmented: sizes unknown
			} else {
				same = true
			}
		}
		w.recovered = smaller && !same
	}
}

// dsacked reports whether the receiver said (D-SACK) that bytes s
// arrived twice: then an earlier transmission was delivered too.
func (d *dirState) dsacked(s span) bool {
	for _, x := range d.dsacks {
		if x.Start <= s.Start && s.End <= x.End {
			return true
		}
	}
	return false
}

// sackedAfter reports whether the receiver selectively acknowledged bytes
// at or past offset end (it had later bytes).
func (d *dirState) sackedAfter(end uint32) bool {
	for _, x := range d.sacks {
		if x.Start >= end {
			return true
		}
	}
	return false
}

func sortByTime(ws []wirePkt) {
	slices.SortStableFunc(ws, func(a, b wirePkt) int { return cmp.Compare(a.t, b.t) })
}

// inOrder reports whether the direction's recorded transmissions came in
// time order, each starting where the previous one ended: no
// retransmission, no reordering.
func (d *dirState) inOrder() bool {
	for i := 1; i < len(d.segs); i++ {
		if d.segs[i].Start != d.segs[i-1].End || d.segs[i].t < d.segs[i-1].t {
			return false
		}
	}
	return d.over == 0
}
