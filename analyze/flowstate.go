package analyze

import (
	"net/netip"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// What the analyzer keeps of each connection package flow's tracker
// follows: the tracker says which packets belong to it, which side sent
// them and where they lie in each stream; the analyzer records, segment by
// segment, what it needs beyond the handshake's outcome: every data
// transmission and when, every acknowledgement and SACK block and when,
// the holes in what a receiver had, the control packets for the ladder
// diagrams, the SYNs' options for pairing two captures.

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
	up   = flow.ClientToServer
	down = flow.ServerToClient
	// maxEvents bounds the acknowledgement events, gaps and control
	// packets kept per flow.
	maxEvents = 48
)

// dirState is one direction of a flow, its stream offsets as the tracker
// placed them.
type dirState struct {
	segs   []seg
	over   int // data transmissions past the limits
	maxEnd uint32
	gaps   []gap
	acks   []ackEvent // cumulative acknowledgements, increasing
	sacks  []ackEvent // selective acknowledgement blocks, first time each
	dsacks []span     // duplicate-SACK blocks: bytes that arrived twice
	ack    uint32     // highest cumulative acknowledgement, as an offset
	ackSet bool
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

// flowState is what the analyzer records of one TCP connection.
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
	// judged (the capture's end, or when the tracker forgot it).
	ackT, capEnd int64
	// hs indexes the flow's handshake among those the tracker emitted
	// (tracked.list), -1 when it emitted none or it is not listed;
	// outcome is that handshake's outcome.
	hs      int32
	outcome diagnose.Outcome
	// id numbers the flow in its capture.
	id uint64
}

func (f *flowState) addCtl(t int64, dir int, flags packet.TCPFlags, ipLen int) {
	if len(f.ctl) < maxEvents {
		f.ctl = append(f.ctl, ctl{t: t, dir: uint8(dir), flags: flags, ipLen: int32(ipLen)})
	}
}

// segment records one TCP segment of the flow.
func (f *flowState) segment(s *flow.Segment, lim *Limits) {
	p, t, di := s.Packet, s.Time, s.Side
	d, o := &f.d[di], &f.d[1-di]
	h := &p.TCP
	f.last = t
	d.last = t
	d.packets++
	if p.Frag.Is {
		f.frags++
	}
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
		}
		si.count++
		f.addCtl(t, di, h.Flags, p.IPLen)
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
	if s.AckOK {
		if sk, ok := f.ackFrom(o, s, lim); ok && p.PayloadLen == 0 && len(f.ctl) < maxEvents {
			f.ctl = append(f.ctl, ctl{t: t, dir: uint8(di), flags: h.Flags, ipLen: int32(p.IPLen), sack: sk})
		}
	}
	if p.PayloadLen > 0 && !h.Flags.Has(packet.SYN) && s.SeqOK {
		f.data(d, s, lim)
	}
}

// ackFrom records what segment s acknowledges of direction o, and returns
// a SACK block it carried that was new.
func (f *flowState) ackFrom(o *dirState, s *flow.Segment, lim *Limits) (newSACK span, ok bool) {
	a, t := s.Ack, s.Time
	if a <= lim.MaxStream+1<<16 && (!o.ackSet || int32(a-o.ack) > 0) {
		o.ack, o.ackSet = a, true
		if len(o.acks) < maxEvents {
			o.acks = append(o.acks, ackEvent{span{Start: 0, End: a}, t})
		} else {
			o.acks[len(o.acks)-1] = ackEvent{span{Start: 0, End: a}, t}
		}
	}
	for _, b := range s.SACK[:s.NSACK] {
		sp := span{Start: b.Left, End: b.Right}
		if sp.End <= sp.Start || sp.End > lim.MaxStream+1<<16 {
			continue
		}
		if sp.End <= a { // D-SACK (RFC 2883): these bytes arrived twice
			if len(o.dsacks) < maxEvents {
				o.dsacks = append(o.dsacks, sp)
			}
			continue
		}
		if o.sacksHave(sp) {
			continue
		}
		if len(o.sacks) < maxEvents {
			o.sacks = append(o.sacks, ackEvent{sp, t})
		}
		newSACK, ok = sp, true
	}
	return newSACK, ok
}

func (d *dirState) sacksHave(s span) bool {
	for _, x := range d.sacks {
		if x.Start <= s.Start && s.End <= x.End {
			return true
		}
	}
	return false
}

// data records a data transmission.
func (f *flowState) data(d *dirState, sg *flow.Segment, lim *Limits) {
	p, t, rel := sg.Packet, sg.Time, sg.Seq
	s := span{Start: rel, End: rel + uint32(p.PayloadLen)}
	if d.firstData == 0 {
		d.firstData = t
	}
	if rel >= lim.MaxStream || s.End < s.Start {
		d.over++
		return
	}
	if rel == 0 && d.headLen == 0 && len(p.Payload) > 0 {
		d.headLen = copy(d.head[:], p.Payload)
	}
	if s.Start > d.maxEnd && len(d.gaps) < maxEvents {
		d.gaps = append(d.gaps, gap{span{Start: d.maxEnd, End: s.Start}, t})
	}
	d.maxEnd = max(d.maxEnd, s.End)
	if len(d.segs) >= lim.MaxSegments {
		d.over++
		return
	}
	d.segs = append(d.segs, seg{span: s, t: t, ipLen: int32(p.IPLen), hdr: int16(p.IPLen - p.PayloadLen)})
}
