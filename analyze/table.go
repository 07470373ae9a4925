package analyze

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// Limits bound the memory an analysis uses, whatever the size of the
// capture. The zero value of a field means its default.
type Limits struct {
	// MaxFlows is the number of TCP flows followed at once (default
	// 65536). Past it, flows idle for 10 s of capture time are closed
	// early; if none is, a new flow is not followed (counted in
	// Stats.FlowsUntracked).
	MaxFlows int
	// MaxSegments is the number of data transmissions recorded per flow and
	// direction (default 64); later ones are counted, not analysed
	// (the handshake is over long before).
	MaxSegments int
	// MaxStream is how far into each direction's byte stream segments are
	// recorded, bytes (default 256 KiB).
	MaxStream uint32
	// MaxRecords is the number of finished flows kept with their segments
	// for the report, the pairing of two captures and the ladder diagrams
	// (default 50000). Flows past it still count in every figure and in
	// the verdict, but are not listed or paired.
	MaxRecords int
	// IdleTimeout closes a flow after this much capture time without a
	// packet (default 60 s).
	IdleTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxFlows <= 0 {
		l.MaxFlows = 65536
	}
	if l.MaxSegments <= 0 {
		l.MaxSegments = 64
	}
	if l.MaxStream == 0 {
		l.MaxStream = 256 << 10
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = 50000
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 60 * time.Second
	}
	return l
}

// synInfo is what a SYN (or SYN-ACK) says.
type synInfo struct {
	seen     bool
	t        int64 // capture time, Unix nanoseconds
	isn      uint32
	mss      int
	wscale   int8
	sackOK   bool
	tsOK     bool
	tsVal    uint32
	ipLen    int
	hopLimit uint8
	count    int // transmissions of the SYN
}

// seg is one data transmission as captured: a byte range of the stream, the
// IP packet's size and header size, and when.
type seg struct {
	span
	t     int64
	ipLen int32
	hdr   int16 // IP plus TCP header bytes
}

// gap is a hole in what a receiver had when later bytes arrived.
type gap struct {
	span
	t int64
}

// ackEvent is the first time the peer acknowledged up to (or selectively)
// a range.
type ackEvent struct {
	span
	t int64
}

// ctl is a control packet kept for the ladder diagram: SYN, FIN, RST, or
// an acknowledgement with a new SACK block (sack set).
type ctl struct {
	t     int64
	dir   uint8
	flags packet.TCPFlags
	ipLen int32
	sack  span
}

const (
	up   = 0 // client to server
	down = 1 // server to client
	// maxEvents bounds the acknowledgement events, gaps and control
	// packets kept per flow.
	maxEvents = 48
)

// dirState is one direction of a flow.
type dirState struct {
	base    uint32 // sequence number of stream offset 0
	baseSet bool
	segs    []seg
	over    int // data transmissions past the limits
	seen    spanSet
	maxEnd  uint32
	gaps    []gap
	acks    []ackEvent // cumulative acknowledgements, increasing
	sacks   []ackEvent // selective acknowledgement blocks, first time each
	dsacks  []span     // duplicate-SACK blocks: bytes that arrived twice
	ack     uint32     // highest cumulative acknowledgement, as an offset
	ackSet  bool
	// head holds the first bytes of the stream, for the TLS record header.
	head    [8]byte
	headLen int
	hop     uint8
	fin     bool
	rst     bool
	packets int
	// firstData is when this side sent (or was seen sending) its first
	// data, last its last packet of any kind.
	firstData int64
	last      int64
}

// tooBig is an ICMP too-big quoting a flow.
type tooBig struct {
	t      int64
	dir    uint8 // the direction of the packet it quotes
	mtu    int
	quoted int
	from   netip.Addr
	// inherited: not about this flow, but about an earlier one to the same
	// destination: the sender's path MTU was already lower when this flow
	// began (only its segment sizes follow from it).
	inherited bool
}

// pmtuEvent is the last ICMP too-big about packets to one destination.
type pmtuEvent struct {
	t   int64
	mtu int
}

// flowState is one TCP connection being followed.
type flowState struct {
	client, server netip.AddrPort
	family         uint8
	first, last    int64
	syn, synAck    synInfo
	d              [2]dirState
	tooBig         []tooBig
	ctl            []ctl
	frags          int
	closedAt       int64 // RST or second FIN, 0 while open
	// ackT is when the client first acknowledged the SYN-ACK (the end of
	// the three-way handshake); capEnd the capture time when the flow was
	// judged (the capture's end, or when it was closed).
	ackT, capEnd int64
	// hash is the table's key for the flow (the same both ways), next the
	// following flow with that key.
	hash uint64
	next *flowState
}

// dirOf returns the direction of a packet from src.
func (f *flowState) dirOf(src netip.AddrPort) int {
	if src == f.client {
		return up
	}
	return down
}

func (f *flowState) addCtl(t int64, dir int, flags packet.TCPFlags, ipLen int) {
	if len(f.ctl) < maxEvents {
		f.ctl = append(f.ctl, ctl{t: t, dir: uint8(dir), flags: flags, ipLen: int32(ipLen)})
	}
}

// tcp feeds one TCP packet of the flow.
func (f *flowState) tcp(p *packet.Packet, t int64, lim *Limits) {
	src := netip.AddrPortFrom(p.Src, p.TCP.SrcPort)
	di := f.dirOf(src)
	d, o := &f.d[di], &f.d[1-di]
	h := &p.TCP
	f.last = t
	d.last = t
	d.packets++
	if d.hop == 0 {
		d.hop = p.HopLimit
	}
	if h.Flags.Has(packet.SYN) {
		si := &f.syn
		if di == down {
			si = &f.synAck
		}
		if !si.seen {
			*si = synInfo{seen: true, t: t, isn: h.Seq, mss: int(h.MSS), wscale: h.WScale, sackOK: h.SACKPermitted,
				tsOK: h.Timestamps, tsVal: h.TSVal, ipLen: p.IPLen, hopLimit: p.HopLimit}
			d.base, d.baseSet = h.Seq+1, true
		}
		si.count++
		f.addCtl(t, di, h.Flags, p.IPLen)
	} else if !d.baseSet {
		d.base, d.baseSet = h.Seq, true
	}
	if h.Flags.Has(packet.FIN) || h.Flags.Has(packet.RST) {
		if h.Flags.Has(packet.RST) {
			d.rst = true
		} else {
			d.fin = true
		}
		f.addCtl(t, di, h.Flags, p.IPLen)
		if f.closedAt == 0 && (d.rst || (d.fin && o.fin)) {
			f.closedAt = t
		}
	}
	if di == up && f.ackT == 0 && f.synAck.seen && !h.Flags.Has(packet.SYN) && h.Flags.Has(packet.ACK) {
		f.ackT = t
	}
	if h.Flags.Has(packet.ACK) && o.baseSet {
		if s, ok := f.ackFrom(o, h, t, lim); ok && p.PayloadLen == 0 && len(f.ctl) < maxEvents {
			f.ctl = append(f.ctl, ctl{t: t, dir: uint8(di), flags: h.Flags, ipLen: int32(p.IPLen), sack: s})
		}
	}
	if p.PayloadLen > 0 && !h.Flags.Has(packet.SYN) {
		f.data(d, p, t, lim)
	}
}

// ackFrom records what a packet acknowledges of direction o, and returns
// a SACK block it carried that was new.
func (f *flowState) ackFrom(o *dirState, h *packet.TCP, t int64, lim *Limits) (newSACK span, ok bool) {
	a := h.Ack - o.base
	if a <= lim.MaxStream+1<<16 && (!o.ackSet || int32(a-o.ack) > 0) {
		o.ack, o.ackSet = a, true
		if len(o.acks) < maxEvents {
			o.acks = append(o.acks, ackEvent{span{0, a}, t})
		} else {
			o.acks[len(o.acks)-1] = ackEvent{span{0, a}, t}
		}
	}
	for _, b := range h.Blocks() {
		s := span{b.Left - o.base, b.Right - o.base}
		if s.end <= s.start || s.end > lim.MaxStream+1<<16 {
			continue
		}
		if s.end <= a { // D-SACK (RFC 2883): these bytes arrived twice
			if len(o.dsacks) < maxEvents {
				o.dsacks = append(o.dsacks, s)
			}
			continue
		}
		if o.sacksHave(s) {
			continue
		}
		if len(o.sacks) < maxEvents {
			o.sacks = append(o.sacks, ackEvent{s, t})
		}
		newSACK, ok = s, true
	}
	return newSACK, ok
}

func (d *dirState) sacksHave(s span) bool {
	for _, x := range d.sacks {
		if x.start <= s.start && s.end <= x.end {
			return true
		}
	}
	return false
}

// data records a data transmission.
func (f *flowState) data(d *dirState, p *packet.Packet, t int64, lim *Limits) {
	rel := p.TCP.Seq - d.base
	s := span{rel, rel + uint32(p.PayloadLen)}
	if d.firstData == 0 {
		d.firstData = t
	}
	if rel >= lim.MaxStream || s.end < s.start {
		d.over++
		return
	}
	if rel == 0 && d.headLen == 0 && len(p.Payload) > 0 {
		d.headLen = copy(d.head[:], p.Payload)
	}
	if s.start > d.maxEnd && len(d.gaps) < maxEvents {
		d.gaps = append(d.gaps, gap{span{d.maxEnd, s.start}, t})
	}
	d.maxEnd = max(d.maxEnd, s.end)
	d.seen.add(s)
	if len(d.segs) >= lim.MaxSegments {
		d.over++
		return
	}
	d.segs = append(d.segs, seg{span: s, t: t, ipLen: int32(p.IPLen), hdr: int16(p.IPLen - p.PayloadLen)})
}

// flowKey is a directed 4-tuple.
type flowKey struct{ src, dst netip.AddrPort }

// mapKey is a flowKey packed for hashing: both addresses as 16 bytes
// (IPv4 mapped), both ports.
type mapKey [36]byte

func packKey(src, dst netip.Addr, sp, dp uint16) (m mapKey) {
	*(*[16]byte)(m[0:16]) = src.As16()
	*(*[16]byte)(m[16:32]) = dst.As16()
	m[32], m[33], m[34], m[35] = byte(sp>>8), byte(sp), byte(dp>>8), byte(dp)
	return m
}

// lookup returns the flow between two endpoints, either way round, or nil.
func (tb *table) lookup(a, b netip.AddrPort) *flowState {
	for f := tb.flows[flow.EndpointsHash(tb.seed, a, b)]; f != nil; f = f.next {
		if flow.SameEndpoint(f.client, a) && flow.SameEndpoint(f.server, b) || flow.SameEndpoint(f.client, b) && flow.SameEndpoint(f.server, a) {
			return f
		}
	}
	return nil
}

// unlink takes a flow out of the table.
func (tb *table) unlink(f *flowState) {
	head := tb.flows[f.hash]
	switch {
	case head == f && f.next == nil:
		delete(tb.flows, f.hash)
	case head == f:
		tb.flows[f.hash] = f.next
	default:
		for x := head; x != nil; x = x.next {
			if x.next == f {
				x.next = f.next
				break
			}
		}
	}
	f.next = nil
}

// icmpEvent is one ICMP too-big message seen, for the report.
type icmpEvent struct {
	t      int64
	from   netip.Addr
	mtu    int
	quoted int
	flow   flowKey // the quoted packet's source and destination
	known  bool    // it quoted a flow being followed
}

// fragKey is an address pair that exchanged IP fragments.
type fragKey struct{ src, dst netip.Addr }

// table follows the flows of one capture.
type table struct {
	lim Limits
	// flows finds a flow by endpointsHash of its endpoints (either way
	// round); flows whose hashes collide are chained.
	flows  map[uint64]*flowState
	seed   uint64
	active int
	// finish receives each finished flow; it returns true when it kept
	// nothing of it, so its state (and the capacity of its slices) can
	// serve a later flow.
	finish    func(*flowState) bool
	free      []*flowState
	icmp      []icmpEvent
	icmpCount int
	frags     map[fragKey]int
	fragCount int
	pmtu      map[netip.Addr]pmtuEvent // destination -> the MTU its senders learned
	stats     Stats
	sinceTidy int
	now       int64
}

func newTable(lim Limits, finish func(*flowState) bool) *table {
	return &table{lim: lim, flows: make(map[uint64]*flowState), seed: rand.Uint64(), finish: finish, frags: make(map[fragKey]int),
		pmtu: make(map[netip.Addr]pmtuEvent)}
}

const (
	maxICMPKept  = 1000
	maxFragPairs = 256
	maxPMTUDests = 4096
)

// packet feeds one decoded packet captured at t.
func (tb *table) packet(p *packet.Packet, t int64) {
	tb.now = max(tb.now, t)
	if tb.sinceTidy++; tb.sinceTidy >= max(1<<16, 2*tb.active) {
		tb.tidy(false)
	}
	if p.Frag.Is {
		tb.fragCount++
		k := fragKey{p.Src, p.Dst}
		if _, ok := tb.frags[k]; ok || len(tb.frags) < maxFragPairs {
			tb.frags[k]++
		}
		if !p.Transport {
			return
		}
	}
	if !p.Transport {
		return
	}
	switch p.Proto {
	case packet.ProtoTCP:
		tb.stats.TCPPackets++
		tb.tcp(p, t)
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if p.TooBig() {
			tb.tooBig(p, t)
		}
	}
}

func (tb *table) tcp(p *packet.Packet, t int64) {
	src := netip.AddrPortFrom(p.Src, p.TCP.SrcPort)
	dst := netip.AddrPortFrom(p.Dst, p.TCP.DstPort)
	f := tb.lookup(src, dst)
	syn := p.TCP.Flags.Has(packet.SYN) && !p.TCP.Flags.Has(packet.ACK)
	if f != nil && syn && f.syn.seen && f.syn.isn != p.TCP.Seq {
		// The 4-tuple is reused by a new connection.
		tb.close(f)
		f = nil
	}
	if f == nil {
		if !p.TCP.Flags.Has(packet.SYN) {
			tb.stats.PacketsWithoutSYN++
			return
		}
		if tb.active >= tb.lim.MaxFlows {
			tb.tidy(true)
			if tb.active >= tb.lim.MaxFlows {
				tb.stats.FlowsUntracked++
				return
			}
		}
		f = tb.newFlow()
		f.client, f.server, f.family, f.first = src, dst, p.Family, t
		if !syn { // a SYN-ACK whose SYN the capture missed
			f.client, f.server = dst, src
		}
		tb.inheritPMTU(f)
		f.hash = flow.EndpointsHash(tb.seed, f.client, f.server)
		f.next = tb.flows[f.hash]
		tb.flows[f.hash] = f
		tb.active++
		tb.stats.Flows++
	}
	if p.Frag.Is {
		f.frags++
	}
	f.tcp(p, t, &tb.lim)
}

func (tb *table) tooBig(p *packet.Packet, t int64) {
	tb.icmpCount++
	q := &p.ICMP.Quote
	ev := icmpEvent{t: t, from: p.Src, mtu: p.ICMP.MTU, quoted: q.IPLen}
	if q.Valid && p.ICMP.MTU > 0 {
		if _, ok := tb.pmtu[q.Dst]; ok || len(tb.pmtu) < maxPMTUDests {
			tb.pmtu[q.Dst] = pmtuEvent{t, p.ICMP.MTU}
		}
	}
	if q.Valid && q.Ports && q.Proto == packet.ProtoTCP {
		ev.flow = flowKey{netip.AddrPortFrom(q.Src, q.SrcPort), netip.AddrPortFrom(q.Dst, q.DstPort)}
		if f := tb.lookup(ev.flow.src, ev.flow.dst); f != nil {
			ev.known = true
			if len(f.tooBig) < maxEvents {
				f.tooBig = append(f.tooBig, tooBig{t: t, dir: uint8(f.dirOf(ev.flow.src)), mtu: p.ICMP.MTU, quoted: q.IPLen, from: p.Src})
			}
		}
	}
	if len(tb.icmp) < maxICMPKept {
		tb.icmp = append(tb.icmp, ev)
	}
}

// inheritPMTU gives a flow the path MTU its senders learned from another
// flow's ICMP too-big to the same destination: from then on they cut their
// segments to it, whichever flow the ICMP was about.
func (tb *table) inheritPMTU(f *flowState) {
	for di, dst := range []netip.Addr{f.server.Addr(), f.client.Addr()} {
		e, ok := tb.pmtu[dst]
		if !ok {
			continue
		}
		known := false
		for _, x := range f.tooBig {
			known = known || (x.t == e.t && int(x.dir) == di)
		}
		if !known && len(f.tooBig) < maxEvents {
			f.tooBig = append(f.tooBig, tooBig{t: e.t, dir: uint8(di), mtu: e.mtu, inherited: true})
		}
	}
}

// close finishes a flow and forgets it.
func (tb *table) close(f *flowState) {
	f.capEnd = max(tb.now, f.last)
	tb.inheritPMTU(f)
	tb.unlink(f)
	tb.active--
	if tb.finish(f) && len(tb.free) < maxFree {
		tb.free = append(tb.free, f)
	}
}

// maxFree bounds the finished flow states kept for reuse.
const maxFree = 8192

// newFlow returns a zero flow state, reusing a finished one's slices.
func (tb *table) newFlow() *flowState {
	n := len(tb.free)
	if n == 0 {
		return &flowState{}
	}
	f := tb.free[n-1]
	tb.free = tb.free[:n-1]
	var keep [2]dirState
	for i := range f.d {
		d, k := &f.d[i], &keep[i]
		k.segs, k.gaps, k.acks, k.sacks, k.dsacks, k.seen.r = d.segs[:0], d.gaps[:0], d.acks[:0], d.sacks[:0], d.dsacks[:0], d.seen.r[:0]
	}
	tooBig, ctl := f.tooBig[:0], f.ctl[:0]
	*f = flowState{d: keep, tooBig: tooBig, ctl: ctl}
	return f
}

// tidy closes flows that are over: closed (RST or both FINs) a second ago,
// or idle past the timeout; urgent (the table is full) closes flows idle
// for 10 s too.
func (tb *table) tidy(urgent bool) {
	tb.sinceTidy = 0
	idle := tb.lim.IdleTimeout.Nanoseconds()
	if urgent {
		idle = min(idle, (10 * time.Second).Nanoseconds())
	}
	var done []*flowState
	for _, head := range tb.flows {
		for f := head; f != nil; f = f.next {
			if (f.closedAt != 0 && tb.now-f.closedAt > int64(time.Second)) || tb.now-f.last > idle {
				done = append(done, f)
			}
		}
	}
	for _, f := range done {
		tb.close(f)
	}
}

// end closes every flow still open, at the end of the capture.
func (tb *table) end() {
	var all []*flowState
	for _, head := range tb.flows {
		for f := head; f != nil; f = f.next {
			all = append(all, f)
		}
	}
	sortFlows(all)
	for _, f := range all {
		tb.close(f)
	}
}
