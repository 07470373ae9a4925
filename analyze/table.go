package analyze

import (
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// Limits bound the memory an analysis uses, whatever the size of the
// capture. The zero value of a field means its default.
type Limits struct {
	// MaxFlows is the number of TCP flows followed at once (default
	// 65536): package flow's tracker's bound. Past it, a new flow pushes
	// out a finished one, else an unfinished one (counted in
	// Stats.FlowsUntracked), in the tracker's order (flow.Config.MaxFlows).
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
	// IdleTimeout closes a flow whose handshake is over after this much
	// capture time without a packet (default 60 s; the tracker's
	// flow.Config.Linger).
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

// flowKey is a directed 4-tuple.
type flowKey struct{ src, dst netip.AddrPort }

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

// table follows the flows of one capture through package flow's tracker,
// whose Observer it is: the tracker finds each packet's connection once,
// the table records what the analyzer needs of it (flowState), and the
// tracker's handshakes go to hs.
type table struct {
	lim Limits
	tr  *flow.Tracker
	hs  *tracked
	// flows holds the flows being followed by the tracker's handle for
	// them (a handle the table hands out: free ones are reused); nil for
	// a connection the analyzer does not record (its start not seen).
	flows   []*flowState
	handles []int32
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
	// recorded counts the TCP packets recorded in a flow; known says the
	// ICMP too-big being handled quoted a recorded flow.
	recorded uint64
	known    bool
	// opened numbers the flows recorded.
	opened uint64
	now    int64
	// ending says the capture ended: flows the tracker forgets go to
	// ended, to be finished in the order of their first packet.
	ending bool
	ended  []*flowState
	// closing holds the flows that closed (RST, or a FIN each way), in
	// the order they did: each is finished closeWait later, whether or
	// not the tracker still remembers its connection (it keeps finished
	// ones for Limits.IdleTimeout), so that its state serves a later flow.
	closing []closingFlow
}

// closingFlow is a flow (f, numbered id: its state may serve another
// flow by the time) that closed at t, under handle h.
type closingFlow struct {
	h  int32
	f  *flowState
	id uint64
	t  int64
}

// closeWait is how long after a flow closed it is finished: its last
// acknowledgements have come.
const closeWait = int64(time.Second)

func newTable(lim Limits, hs *tracked, finish func(*flowState) bool) *table {
	tb := &table{lim: lim, hs: hs, finish: finish, frags: make(map[fragKey]int), pmtu: make(map[netip.Addr]pmtuEvent)}
	tb.tr = flow.NewTracker(flow.Config{MaxFlows: lim.MaxFlows, Linger: lim.IdleTimeout, Observer: tb})
	return tb
}

const (
	maxICMPKept  = 1000
	maxFragPairs = 256
	maxPMTUDests = 4096
)

// packet feeds one decoded packet captured at ts.
func (tb *table) packet(p *packet.Packet, ts time.Time) {
	t := ts.UnixNano()
	tb.now = max(tb.now, t)
	tb.known = false
	tb.tr.Packet(p, ts)
	for len(tb.closing) > 0 && tb.now-tb.closing[0].t > closeWait {
		c := tb.closing[0]
		tb.closing = tb.closing[1:]
		if tb.flows[c.h] == c.f && c.f.id == c.id {
			tb.flows[c.h] = nil
			tb.close(c.f)
		}
	}
	if p.Frag.Is {
		tb.fragCount++
		k := fragKey{p.Src, p.Dst}
		if _, ok := tb.frags[k]; ok || len(tb.frags) < maxFragPairs {
			tb.frags[k]++
		}
	}
	if !p.Transport {
		return
	}
	switch p.Proto {
	case packet.ProtoTCP:
		tb.stats.TCPPackets++
	case packet.ProtoICMP, packet.ProtoICMPv6:
		if p.TooBig() {
			tb.tooBig(p, t)
		}
	}
}

// Open starts recording a connection the tracker saw open (its SYN or
// SYN-ACK); one seen from its middle is not recorded.
func (tb *table) Open(c *flow.Conn) int32 {
	if !c.SYN {
		return -1
	}
	f := tb.newFlow()
	tb.opened++
	f.client, f.server, f.family, f.first, f.hs, f.id = c.Client, c.Server, c.Family, c.Time, -1, tb.opened
	tb.inheritPMTU(f)
	tb.stats.Flows++
	var h int32
	if n := len(tb.handles); n > 0 {
		h = tb.handles[n-1]
		tb.handles = tb.handles[:n-1]
		tb.flows[h] = f
	} else {
		h = int32(len(tb.flows))
		tb.flows = append(tb.flows, f)
	}
	return h
}

// Segment records a segment of a recorded flow.
func (tb *table) Segment(h int32, s *flow.Segment) {
	if h < 0 {
		return
	}
	f := tb.flows[h]
	if f == nil {
		return // finished after it closed: what follows is not recorded
	}
	tb.recorded++
	open := f.closedAt == 0
	f.segment(s, &tb.lim)
	if open && f.closedAt != 0 {
		tb.closing = append(tb.closing, closingFlow{h, f, f.id, tb.now})
	}
}

// TooBig notes an ICMP too-big about a recorded flow's segment.
func (tb *table) TooBig(h int32, side int, p *packet.Packet) {
	if h < 0 {
		return
	}
	f := tb.flows[h]
	if f == nil {
		return
	}
	tb.known = true
	if len(f.tooBig) < maxEvents {
		f.tooBig = append(f.tooBig, tooBig{t: tb.now, dir: uint8(side), mtu: p.ICMP.MTU, quoted: p.ICMP.Quote.IPLen, from: p.Src})
	}
}

// Handshake lists a handshake the tracker classified, and links its flow
// to it.
func (tb *table) Handshake(h int32, hs *flow.Handshake) {
	i := tb.hs.add(hs)
	if h >= 0 && tb.flows[h] != nil {
		tb.flows[h].hs, tb.flows[h].outcome = i, hs.Outcome
	}
}

// Close finishes a flow the tracker forgot.
func (tb *table) Close(h int32) {
	if h < 0 {
		return
	}
	f := tb.flows[h]
	tb.flows[h] = nil
	tb.handles = append(tb.handles, h)
	if f == nil {
		return // finished already, after it closed
	}
	if tb.ending {
		tb.ended = append(tb.ended, f)
		return
	}
	tb.close(f)
}

func (tb *table) tooBig(p *packet.Packet, t int64) {
	tb.icmpCount++
	q := &p.ICMP.Quote
	ev := icmpEvent{t: t, from: p.Src, mtu: p.ICMP.MTU, quoted: q.IPLen, known: tb.known}
	if q.Valid && p.ICMP.MTU > 0 {
		if _, ok := tb.pmtu[q.Dst]; ok || len(tb.pmtu) < maxPMTUDests {
			tb.pmtu[q.Dst] = pmtuEvent{t, p.ICMP.MTU}
		}
	}
	if q.Valid && q.Ports && q.Proto == packet.ProtoTCP {
		ev.flow = flowKey{netip.AddrPortFrom(q.Src, q.SrcPort), netip.AddrPortFrom(q.Dst, q.DstPort)}
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

// close finishes a flow.
func (tb *table) close(f *flowState) {
	f.capEnd = max(tb.now, f.last)
	tb.inheritPMTU(f)
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
		k.segs, k.gaps, k.acks, k.sacks, k.dsacks = d.segs[:0], d.gaps[:0], d.acks[:0], d.sacks[:0], d.dsacks[:0]
	}
	tooBig, ctl := f.tooBig[:0], f.ctl[:0]
	*f = flowState{d: keep, tooBig: tooBig, ctl: ctl}
	return f
}

// end finishes every flow still followed, at the end of the capture (its
// last packet at last), in the order of their first packets, and fills
// in the flow figures of the stats.
func (tb *table) end(last time.Time) {
	tb.ending = true
	tb.tr.Flush(last)
	sortFlows(tb.ended)
	for _, f := range tb.ended {
		tb.close(f)
	}
	tb.ended = nil
	st := tb.tr.Stats()
	tb.stats.FlowsUntracked = int(st.Evicted)
	tb.stats.PacketsWithoutSYN = tb.stats.TCPPackets - tb.recorded
}
