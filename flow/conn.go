package flow

import (
	"net/netip"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/tlswire"
)

// Sides of a flow, indexes of flow.d.
const (
	sideUp   = 0 // client to server
	sideDown = 1 // server to client
)

// flow is one connection's state. Slots are reused: reset clears one.
type flow struct {
	// hash is the table's key for the flow's endpoints, hnext the next
	// flow with the same key (-1: none).
	hash       uint64
	hnext      int32
	prev, next int32
	list       uint8
	clientIsA  bool
	done       bool
	client     netip.AddrPort
	server     netip.AddrPort
	family     uint8
	first      int64 // the first packet
	start      int64 // when the handshake began (connection open): the timeout runs from here
	last       int64
	end        int64 // last packet that mattered to the outcome

	synAck    bool
	connected bool
	// synAckOK says the SYN-ACK acknowledged the client's SYN; verified
	// that the client then acknowledged the SYN-ACK (Handshake.Verified).
	synAckOK, verified bool
	// serverHello says the server's first record was a ServerHello (or,
	// after a HelloRetryRequest, hrr, the one that followed the client's
	// second hello).
	serverHello bool
	hrr         bool
	// plain says a side spoke plaintext before any ClientHello
	// (STARTTLS, a server that speaks first).
	plain bool
	// altISN is the sequence number after the ISN of a second SYN-ACK
	// with a new ISN (a retransmitted SYN answered anew), until the
	// client's ACK or the server's data says which one the connection
	// took.
	altISN    uint32
	hasAltISN bool
	// synAckAt and ackAt are when the SYN-ACK and the client's ACK of it
	// were seen (0: not seen), for the round trip.
	synAckAt, ackAt int64
	alert           bool
	alertDesc       uint8
	alertBy         uint8 // side+1
	alertEnc        bool
	notTLS          bool
	notTLSBy        uint8
	prefix          [16]byte
	prefixN         uint8
	completed       bool
	closedBy        diagnose.Side
	rst             bool
	// hop is the TTL or hop limit the client's first packet came with;
	// rstForged says a reset as from the client came with another (see
	// Handshake.ResetHopDiffers).
	hop       uint8
	rstForged bool

	tooBig    int
	tooBigMTU int

	d     [2]dir
	hello helloState
	// oh is the Observer's handle for the flow.
	oh int32
}

func (f *flow) reset() {
	buf := f.hello.buf
	*f = flow{hnext: -1, prev: -1, next: -1, list: listNone}
	f.hello.buf = buf // released by the tracker, nil here
	for i := range f.d {
		f.d[i].wscale = -1
	}
}

// tcp handles one TCP segment.
func (t *Tracker) tcp(p *packet.Packet, now int64) {
	tc := &p.TCP
	src, dst := netip.AddrPortFrom(p.Src, tc.SrcPort), netip.AddrPortFrom(p.Dst, tc.DstPort)
	h := EndpointsHash(t.seed, src, dst)
	i, ok := t.lookup(h, src, dst)
	if !ok {
		if i = t.open(p, h, now); i < 0 {
			t.stats.Ignored++
			return
		}
	}
	f := t.at(i)
	if ok && tc.Flags&(packet.SYN|packet.ACK) == packet.SYN && (f.done || !f.d[sideUp].syn || f.d[sideUp].isn != tc.Seq) {
		// A new connection on the same four-tuple (the client reused
		// its port): the old one ends here, as a capture's end would.
		t.finish(i, endFlush, now)
		t.release(i)
		if i = t.open(p, h, now); i < 0 {
			t.stats.Ignored++
			return
		}
		f = t.at(i)
	}
	f.last = now
	side := f.side(src, dst)
	if f.done {
		t.move(i, listDone)
		t.observe(f, side, p, now)
		return
	}
	if now >= f.start+t.timeout {
		t.finish(i, endTimeout, now)
		t.observe(f, side, p, now)
		return
	}
	d, o := &f.d[side], &f.d[1-side]
	if p.Frag.Is {
		d.frags++
	}
	if side == sideUp && f.hop == 0 {
		f.hop = p.HopLimit
	}
	if side == sideDown && tc.Flags.Has(packet.SYN|packet.ACK) && f.synAck && d.syn && tc.Seq != d.isn {
		// A second SYN-ACK with a new ISN: keep both until one is used.
		f.altISN, f.hasAltISN = tc.Seq+1, true
	} else if tc.Flags.Has(packet.SYN) {
		d.syn, d.isn, d.base, d.haveBase = true, tc.Seq, tc.Seq+1, true
		d.mss, d.wscale, d.sackOK, d.ts = tc.MSS, tc.WScale, tc.SACKPermitted, tc.Timestamps
		if side == sideDown && tc.Flags.Has(packet.ACK) {
			f.synAck = true
			f.synAckAt = now
			f.synAckOK = o.syn && tc.Ack == o.isn+1
		}
	}
	if f.hasAltISN {
		f.pickISN(side, tc, p.PayloadLen)
	}
	t.observe(f, side, p, now)
	if tc.Flags.Has(packet.ACK) {
		if side == sideUp && f.synAckOK && !tc.Flags.Has(packet.SYN) && int32(tc.Ack-o.base) >= 0 && int32(tc.Ack-o.base) <= int32(o.end) {
			f.verified = true
		}
		if side == sideUp && f.synAck && !tc.Flags.Has(packet.SYN) && !f.connected {
			f.ackAt = now
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
		f.rstForged = f.rst && side == sideUp && p.HopLimit != f.hop
		f.closedBy = diagnose.ClientSide
		if side == sideDown {
			f.closedBy = diagnose.ServerSide
		}
		f.end = now
		t.finish(i, endClosed, now)
	}
}

// pickISN settles which of two SYN-ACKs' ISNs the connection took: the one
// the client acknowledges, or the one the server's data continues.
func (f *flow) pickISN(side int, tc *packet.TCP, payload int) {
	d := &f.d[sideDown]
	var at uint32
	switch {
	case side == sideUp && tc.Flags.Has(packet.ACK):
		at = tc.Ack
	case side == sideDown && payload > 0:
		at = tc.Seq
	default:
		return
	}
	switch at {
	case f.altISN:
		d.isn, d.base = f.altISN-1, f.altISN
		f.hasAltISN = false
	case d.base:
		f.hasAltISN = false
	}
}

// open starts a flow for a packet of an unknown connection, or returns -1
// when the packet starts nothing the tracker follows.
func (t *Tracker) open(p *packet.Packet, h uint64, now int64) int32 {
	tc := &p.TCP
	var clientIsSrc bool
	switch {
	case tc.Flags.Has(packet.SYN) && !tc.Flags.Has(packet.ACK):
		clientIsSrc = true
	case tc.Flags.Has(packet.SYN | packet.ACK):
		clientIsSrc = false
	case tlswire.IsClientHelloStart(p.Payload):
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
	i := t.alloc(h, now)
	if i < 0 {
		return -1
	}
	f := t.at(i)
	f.family = p.Family
	src, dst := netip.AddrPortFrom(p.Src, tc.SrcPort), netip.AddrPortFrom(p.Dst, tc.DstPort)
	fromA := firstEndpoint(src, dst)
	if clientIsSrc {
		f.client, f.server, f.clientIsA = src, dst, fromA
	} else {
		f.client, f.server, f.clientIsA = dst, src, !fromA
	}
	if t.obs != nil {
		t.conn = Conn{Client: f.client, Server: f.server, Family: f.family, SYN: tc.Flags.Has(packet.SYN), Time: now}
		f.oh = t.obs.Open(&t.conn)
	}
	if tc.Flags.Has(packet.SYN) {
		t.push(listHalf, i)
	} else {
		// Seen from its middle: the ClientHello proves the connection open.
		f.synAck, f.connected = true, true
		t.push(listLoose, i)
	}
	return i
}

// connect marks a flow open: from here it is a handshake.
func (t *Tracker) connect(i int32) {
	f := t.at(i)
	f.connected = true
	f.start = f.last
	if f.verified {
		t.move(i, listActive)
	} else {
		t.move(i, listLoose)
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
	d.guess = false
	if !LocalHop(p.HopLimit) {
		d.guess = int(n) > seg
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
		d.oooAt = f.last
	default:
		for cs := s; int32(cs-e) < 0; cs += uint32(seg) {
			d.split(cs, min(cs+uint32(seg), e), d.hdr)
		}
		if d.overlaps(s, e) {
			if d.retrans == 0 {
				d.retransAt = f.last
			}
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
