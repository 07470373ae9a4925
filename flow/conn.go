package flow

import (
	"net/netip"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
)

// Sides of a flow, indexes of flow.d.
const (
	sideUp   = 0 // client to server
	sideDown = 1 // server to client
)

// maxPieces bounds the wire segments remembered per direction: the
// handshake's first flight fits many times over.
const maxPieces = 16

// piece is one wire-sized segment of a direction, by relative sequence.
type piece struct {
	start, end uint32
	wire       uint16 // IP packet size on the wire
	sent       uint8  // transmissions seen (a retransmission makes 2)
	acked      bool
}

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
	// end is the highest relative sequence sent, plus one.
	end uint32
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

	pieces  [maxPieces]piece
	np      uint8
	retrans int
	ooo     int
	frags   int
	w       walker
}

// flow is one connection's state. Slots are reused: reset clears one.
type flow struct {
	key        key
	prev, next int32
	list       uint8
	clientIsA  bool
	done       bool
	client     netip.AddrPort
	server     netip.AddrPort
	family     uint8
	start      int64
	last       int64
	end        int64 // last packet that mattered to the outcome

	synAck    bool
	connected bool
	// serverHello says the server's first record was a ServerHello.
	serverHello bool
	alert       bool
	alertDesc   uint8
	alertBy     uint8 // side+1
	alertEnc    bool
	notTLS      bool
	notTLSBy    uint8
	prefix      [16]byte
	prefixN     uint8
	completed   bool
	closedBy    diagnose.Side
	rst         bool

	tooBig    int
	tooBigMTU int

	d     [2]dir
	hello helloState
}

func (f *flow) reset() {
	buf := f.hello.buf
	*f = flow{prev: -1, next: -1, list: listNone}
	f.hello.buf = buf // released by the tracker, nil here
	for i := range f.d {
		f.d[i].wscale = -1
	}
}

// tcp handles one TCP segment.
func (t *Tracker) tcp(p *packet.Packet, now int64) {
	tc := &p.TCP
	k, fromA := makeKey(p.Src, p.Dst, tc.SrcPort, tc.DstPort)
	i, ok := t.table[k]
	if !ok {
		if i = t.open(p, k, fromA, now); i < 0 {
			t.stats.Ignored++
			return
		}
	}
	f := &t.flows[i]
	f.last = now
	if f.done {
		t.move(i, listDone)
		return
	}
	if now >= f.start+t.timeout {
		t.finish(i, endTimeout, now)
		return
	}
	side := sideUp
	if fromA != f.clientIsA {
		side = sideDown
	}
	d, o := &f.d[side], &f.d[1-side]
	if p.Frag.Is {
		d.frags++
	}
	if tc.Flags.Has(packet.SYN) {
		d.syn, d.isn, d.base, d.haveBase = true, tc.Seq, tc.Seq+1, true
		d.mss, d.wscale, d.sackOK, d.ts = tc.MSS, tc.WScale, tc.SACKPermitted, tc.Timestamps
		if side == sideDown && tc.Flags.Has(packet.ACK) {
			f.synAck = true
		}
	}
	if tc.Flags.Has(packet.ACK) {
		if side == sideUp && f.synAck && !tc.Flags.Has(packet.SYN) && !f.connected {
			t.connect(i)
		}
		o.ackSeg(tc)
	}
	if p.PayloadLen > 0 {
		if side == sideUp && !f.connected {
			t.connect(i)
		}
		t.data(i, f, side, p)
		if f.done {
			return
		}
	}
	if tc.Flags.Has(packet.RST) || tc.Flags.Has(packet.FIN) {
		if !f.connected && !f.synAck {
			// Nothing opened: a refused or abandoned SYN.
			t.stats.HalfOpen++
			t.release(i)
			return
		}
		f.rst = tc.Flags.Has(packet.RST)
		f.closedBy = diagnose.ClientSide
		if side == sideDown {
			f.closedBy = diagnose.ServerSide
		}
		f.end = now
		t.finish(i, endClosed, now)
	}
}

// open starts a flow for a packet of an unknown connection, or returns -1
// when the packet starts nothing the tracker follows.
func (t *Tracker) open(p *packet.Packet, k key, fromA bool, now int64) int32 {
	tc := &p.TCP
	var clientIsSrc bool
	switch {
	case tc.Flags.Has(packet.SYN) && !tc.Flags.Has(packet.ACK):
		clientIsSrc = true
	case tc.Flags.Has(packet.SYN | packet.ACK):
		clientIsSrc = false
	case isHelloStart(p.Payload):
		clientIsSrc = true
	default:
		return -1
	}
	serverPort := tc.DstPort
	if !clientIsSrc {
		serverPort = tc.SrcPort
	}
	if !t.watched(serverPort) {
		return -1
	}
	i := t.alloc(k, now)
	if i < 0 {
		return -1
	}
	f := &t.flows[i]
	f.family = p.Family
	src, dst := netip.AddrPortFrom(p.Src, tc.SrcPort), netip.AddrPortFrom(p.Dst, tc.DstPort)
	if clientIsSrc {
		f.client, f.server, f.clientIsA = src, dst, fromA
	} else {
		f.client, f.server, f.clientIsA = dst, src, !fromA
	}
	if tc.Flags.Has(packet.SYN) {
		t.push(listHalf, i)
	} else {
		// Seen from its middle: the ClientHello proves the connection open.
		f.synAck, f.connected = true, true
		t.push(listActive, i)
	}
	return i
}

// connect marks a flow open: from here it is a handshake.
func (t *Tracker) connect(i int32) {
	f := &t.flows[i]
	f.connected = true
	f.start = f.last
	t.move(i, listActive)
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
		if !pc.acked && d.acked && int32(d.ack-pc.end) >= 0 {
			pc.acked = true
		}
	}
	for _, b := range tc.Blocks() {
		l, r := b.Left-d.base, b.Right-d.base
		if int32(r-l) <= 0 {
			continue
		}
		for i := range d.pieces[:d.np] {
			pc := &d.pieces[i]
			if !pc.acked && int32(pc.start-l) >= 0 && int32(r-pc.end) >= 0 {
				pc.acked = true
			}
		}
	}
}

// segMax is the payload of one wire segment from this direction's sender:
// the smaller MSS of the two SYNs (or a typical one when no SYN was seen),
// less this segment's TCP options, and within an MTU an ICMP too-big
// reported.
func (t *Tracker) segMax(f *flow, side int, p *packet.Packet, ipHdr int) int {
	opts := p.TCP.HeaderLen - packet.TCPHeaderLen
	mss := 0
	for _, m := range [2]uint16{f.d[0].mss, f.d[1].mss} {
		if m > 0 && (mss == 0 || int(m) < mss) {
			mss = int(m)
		}
	}
	if mss == 0 {
		mss = 1500 - diagnose.IPHeader(int(f.family))
	}
	seg := mss - opts
	if pm := f.d[side].pmtu; pm > 0 {
		seg = min(seg, pm-ipHdr-p.TCP.HeaderLen)
	}
	return max(seg, 64)
}

// data accounts a segment's payload: sequence ranges, wire pieces, and the
// TLS records it carries.
func (t *Tracker) data(i int32, f *flow, side int, p *packet.Packet) {
	d := &f.d[side]
	tc := &p.TCP
	seq := tc.Seq
	if tc.Flags.Has(packet.SYN) {
		seq++
	}
	if !d.haveBase {
		d.base, d.haveBase = seq, true
	}
	s := seq - d.base
	n := uint32(p.PayloadLen)
	payload := p.Payload
	if int32(s) < 0 {
		// Starts before the first byte tracked (a keepalive, a mid-flow
		// base): keep what lies after it.
		skip := -int32(s)
		if uint32(skip) >= n {
			return
		}
		n -= uint32(skip)
		payload = payload[min(int(skip), len(payload)):]
		s = 0
	}
	e := s + n
	ipHdr := p.IPLen - tc.HeaderLen - p.PayloadLen
	if fam := diagnose.IPHeader(int(p.Family)) - packet.TCPHeaderLen; ipHdr < fam || ipHdr > fam+40 {
		ipHdr = fam
	}
	d.hdr = ipHdr + tc.HeaderLen
	seg := t.segMax(f, side, p, ipHdr)
	d.seg = seg
	if remote(p.HopLimit) {
		// Captured on the receiving host: a packet larger than a segment
		// is GRO's merge of segments that came as the largest single one
		// from this sender, when that is one (the sender may have cut its
		// segments after an ICMP too-big this host never saw).
		if int(n) <= seg {
			if int(n) > d.single {
				d.single = int(n)
			}
		} else if d.single >= seg/2 {
			seg = d.single
		}
	}
	switch {
	case s == d.end:
	case int32(s-d.end) > 0:
		d.ooo++
	default:
		for cs := s; int32(cs-e) < 0; cs += uint32(seg) {
			d.split(cs, min(cs+uint32(seg), e), d.hdr)
		}
		if d.overlaps(s, e) {
			d.retrans++
		}
	}
	d.addPieces(s, e, seg, d.hdr)
	if int32(e-d.end) > 0 {
		d.end = e
	}
	if side == sideUp {
		t.clientData(i, f, s, payload, int(n))
	} else {
		t.serverData(i, f, s, payload)
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

// remote reports whether a packet's TTL or hop limit was decremented from
// the initial values stacks use (64, 128, 255): it crossed routers before
// it was captured, so the capture is on the receiving side.
func remote(hop uint8) bool { return hop != 64 && hop != 128 && hop != 255 }

// split cuts the unacknowledged pieces that a retransmitted segment
// [s, e) starts or ends inside: the sender re-sent them in smaller
// packets, so the larger one never got through as it was.
func (d *dir) split(s, e uint32, hdr int) {
	for i := 0; i < int(d.np); i++ {
		pc := d.pieces[i]
		if pc.acked {
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
