package flow

import (
	"time"

	"github.com/mtuscope/mtuscope/packet"
)

// One direction's sequence space: the wire segments its sender sent, what
// the peer acknowledged of them, and what that says about the path.

// maxPieces bounds the wire segments remembered per direction: the
// handshake's first flight fits many times over.
const maxPieces = 16

// piece is one wire-sized segment of a direction, by relative sequence.
type piece struct {
	start, end uint32
	wire       uint16 // IP packet size on the wire
	sent       uint8  // transmissions seen (a retransmission makes 2)
	bits       uint8  // pieceAcked, pieceGuess
}

const (
	// pieceAcked says the peer acknowledged the piece (cumulatively or by SACK).
	pieceAcked = 1 << iota
	// pieceGuess says the size is inferred from a GRO merge on the
	// receiving host: the sender may have cut smaller segments than the MSS.
	pieceGuess
)

func (pc *piece) acked() bool { return pc.bits&pieceAcked != 0 }

// dir is one direction of a connection: what its sender sent and what its
// receiver acknowledged.
type dir struct {
	isn      uint32
	base     uint32 // sequence number of the first data byte
	haveBase bool
	syn      bool
	mss      uint16 // MSS this side offered in its SYN
	wscale   int8
	sackOK   bool
	ts       bool
	// end is the highest relative sequence sent, plus one; plain how much
	// of it was plaintext before the TLS handshake (STARTTLS, a server
	// that speaks first).
	end   uint32
	plain uint32
	// ack is the highest cumulative acknowledgement of this direction's
	// data by the peer, relative; acked says one was seen.
	ack   uint32
	acked bool
	// hdr is the IP plus TCP header bytes of this side's last data
	// segment; pmtu the smallest MTU an ICMP too-big reported for it.
	hdr  int
	pmtu int
	// seg is the payload of a full-size wire segment from this side.
	seg int
	// single is the largest payload of a segment that arrived from a
	// remote sender (captured after routers) in one piece; shrunk the
	// smallest wire packet that was re-sent cut smaller (PMTUD at work).
	single int
	shrunk int
	// guess marks the pieces being added as inferred from a GRO merge.
	guess bool

	pieces  [maxPieces]piece
	np      uint8
	retrans int
	// retransAt is when this side first retransmitted.
	retransAt int64
	ooo       int
	oooAt     int64 // when data last arrived out of order
	frags     int
	w         walker
}

// ackSeg applies a segment's acknowledgement and SACK blocks to the
// direction they acknowledge.
func (d *dir) ackSeg(tc *packet.TCP) {
	if !d.haveBase {
		return
	}
	if a := tc.Ack - d.base; int32(a) >= 0 && (!d.acked || int32(a-d.ack) > 0) {
		d.ack, d.acked = a, true
	}
	for i := range d.pieces[:d.np] {
		pc := &d.pieces[i]
		if !pc.acked() && d.acked && int32(d.ack-pc.end) >= 0 {
			pc.bits |= pieceAcked
		}
	}
	for _, b := range tc.Blocks() {
		l, r := b.Left-d.base, b.Right-d.base
		if int32(r-l) <= 0 {
			continue
		}
		for i := range d.pieces[:d.np] {
			pc := &d.pieces[i]
			if !pc.acked() && int32(pc.start-l) >= 0 && int32(r-pc.end) >= 0 {
				pc.bits |= pieceAcked
			}
		}
	}
}

// overlaps reports whether [s, e) overlaps a piece already sent, and counts
// a transmission of each piece it overlaps.
func (d *dir) overlaps(s, e uint32) bool {
	hit := false
	for i := range d.pieces[:d.np] {
		pc := &d.pieces[i]
		if int32(pc.start-e) < 0 && int32(s-pc.end) < 0 {
			if pc.sent < 255 {
				pc.sent++
			}
			hit = true
		}
	}
	return hit
}

// addPieces records the parts of [s, e) not yet covered as wire segments
// of at most seg payload bytes.
func (d *dir) addPieces(s, e uint32, seg, hdr int) {
	cur := s
	for i := 0; i < int(d.np) && int32(cur-e) < 0; i++ {
		pc := d.pieces[i]
		if int32(pc.end-cur) <= 0 {
			continue
		}
		if int32(pc.start-e) >= 0 {
			break
		}
		if int32(pc.start-cur) > 0 {
			d.chunk(cur, pc.start, seg, hdr)
			i = -1 // pieces moved: start over from the smallest
			cur = pc.end
			continue
		}
		cur = pc.end
	}
	if int32(e-cur) > 0 {
		d.chunk(cur, e, seg, hdr)
	}
}

// chunk inserts [s, e) cut into pieces of seg bytes, keeping pieces sorted.
func (d *dir) chunk(s, e uint32, seg, hdr int) {
	for int32(e-s) > 0 && d.np < maxPieces {
		n := min(uint32(seg), e-s)
		pc := piece{start: s, end: s + n, wire: uint16(min(int(n)+hdr, 65535)), sent: 1}
		if d.guess {
			pc.bits = pieceGuess
		}
		at := int(d.np)
		for at > 0 && int32(d.pieces[at-1].start-s) > 0 {
			at--
		}
		copy(d.pieces[at+1:d.np+1], d.pieces[at:d.np])
		d.pieces[at] = pc
		d.np++
		s += n
	}
}

// LocalHop reports whether a packet's TTL or hop limit is one of the
// initial values stacks use (64, 128, 255): it was captured on the host
// that sent it. A packet from afar lost one per router: the capture is on
// the receiving side.
func LocalHop(hop uint8) bool { return hop == 64 || hop == 128 || hop == 255 }

// split cuts the unacknowledged pieces that a retransmitted segment
// [s, e) starts or ends inside: the sender re-sent them in smaller
// packets, so the larger one never got through as it was.
func (d *dir) split(s, e uint32, hdr int) {
	for i := 0; i < int(d.np); i++ {
		pc := d.pieces[i]
		if pc.acked() {
			continue
		}
		var at uint32
		switch {
		case int32(s-pc.start) > 0 && int32(pc.end-s) > 0:
			at = s
		case int32(e-pc.start) > 0 && int32(pc.end-e) > 0:
			at = e
		default:
			continue
		}
		if d.np == maxPieces {
			return
		}
		if d.shrunk == 0 || int(pc.wire) < d.shrunk {
			d.shrunk = int(pc.wire)
		}
		left, right := pc, pc
		left.end, right.start = at, at
		left.wire = uint16(min(int(left.end-left.start)+hdr, int(pc.wire)))
		right.wire = uint16(min(int(right.end-right.start)+hdr, int(pc.wire)))
		copy(d.pieces[i+2:d.np+1], d.pieces[i+1:d.np])
		d.pieces[i], d.pieces[i+1] = left, right
		d.np++
		i-- // the left part may need another cut
	}
}

// lost reports whether part of what this direction sent within [0, limit)
// never got through: a piece retransmitted and never acknowledged, or a
// gap below data that arrived that nothing ever filled or acknowledged.
// It returns the smallest such wire packet too. gaps and resent say
// whether a gap and a retransmitted piece count (see dir.counts).
func (d *dir) lost(limit uint32, gaps, resent bool) (bool, int) {
	smallest := 0
	note := func(w int) {
		if smallest == 0 || w < smallest {
			smallest = w
		}
	}
	cur := uint32(0)
	if d.acked {
		cur = d.ack
	}
	for _, pc := range d.pieces[:d.np] {
		if int32(pc.start-limit) >= 0 {
			break
		}
		if int32(pc.start-cur) > 0 && gaps {
			// A gap [cur, pc.start): segments that never showed here.
			gap := int(pc.start - cur)
			note(min(gap, max(d.seg, 1)) + d.hdr)
		}
		if resent && !pc.acked() && pc.sent >= 2 && !(d.acked && int32(d.ack-pc.end) >= 0) {
			note(int(pc.wire))
		}
		if int32(pc.end-cur) > 0 {
			cur = pc.end
		}
	}
	if d.shrunk > 0 {
		note(d.shrunk)
	}
	return smallest > 0, smallest
}

// gapWait is how long a gap must stay unfilled, with later bytes waiting
// past it, before a capture that ends counts it lost: long enough for the
// sender, told of the gap by the receiver's duplicate ACK, to have filled
// it. With SACK a sender repairs a hole within about a round trip (fast
// retransmit, RACK: RFC 8985): eight round trips and at least 50 ms. Without
// SACK the retransmission timer may be what fills it: four round trips and
// at least 300 ms (Linux's minimum RTO is 200 ms, Windows' 300 ms). With
// no round trip seen, 1 s (RFC 6298's initial RTO).
func gapWait(rtt int64, sack bool) int64 {
	switch {
	case rtt <= 0:
		return int64(time.Second)
	case sack:
		return max(int64(50*time.Millisecond), 8*rtt)
	}
	return max(int64(300*time.Millisecond), 4*rtt)
}

// counts reports whether this direction's gaps and its retransmitted,
// unacknowledged pieces count as losses for a flow that ended at now (rtt:
// its round trip, 0 unknown; sack: both ends offered SACK): always, unless
// the capture ended while the flow was open (cut). Then the missing
// segments may still have been in flight, and a gap counts only when the
// sender retransmitted or the later bytes had waited gapWait past it; a
// retransmission may have been answered after the capture's end (a tail
// loss probe goes out within a round trip or two, and its
// acknowledgement as fast), and counts only when the capture went on
// gapWait past the first one.
func (d *dir) counts(cut bool, now, rtt int64, sack bool) (gaps, resent bool) {
	if !cut {
		return true, true
	}
	wait := gapWait(rtt, sack)
	return d.retrans > 0 || d.ooo > 0 && now-d.oooAt >= wait, d.retrans > 0 && now-d.retransAt >= wait
}

// delivered returns the largest wire packet of this direction that the
// peer acknowledged. Sizes inferred from GRO merges count only when
// nothing on the flow (an ICMP too-big, a retransmission) says its
// segments may have been cut smaller than the MSS.
func (d *dir) delivered(trustGuesses bool) int {
	best := 0
	for _, pc := range d.pieces[:d.np] {
		if pc.bits&pieceGuess != 0 && !trustGuesses {
			continue
		}
		if pc.acked() || d.acked && int32(d.ack-pc.end) >= 0 {
			best = max(best, int(pc.wire))
		}
	}
	return best
}

// arrived returns the bytes of [0, limit) acknowledged: cumulatively or by
// SACK.
func (d *dir) arrived(limit uint32) int {
	n := uint32(0)
	if d.acked && int32(d.ack) > 0 {
		n = min(d.ack, limit)
	}
	for _, pc := range d.pieces[:d.np] {
		if pc.acked() && int32(pc.start-n) >= 0 && int32(pc.end-limit) <= 0 {
			n += pc.end - pc.start
		}
	}
	return int(n)
}
