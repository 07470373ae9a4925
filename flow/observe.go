package flow

import (
	"net/netip"

	"github.com/mtuscope/mtuscope/packet"
)

// The tracker's model of each connection (which packets belong to it,
// which side sent them, where each direction's stream starts, what an ICMP
// too-big quotes) is offered to one more consumer through an Observer, as
// gopacket's reassembly offers its streams: package analyze keeps its
// per-segment record of wire packets on it, with no flow table of its own.

// Sides of a connection, as Segment.Side and Observer.TooBig give them.
const (
	ClientToServer = sideUp
	ServerToClient = sideDown
)

// Conn is a connection the tracker began to follow.
type Conn struct {
	Client, Server netip.AddrPort
	Family         uint8
	// SYN says it began with its SYN or SYN-ACK; otherwise with a
	// ClientHello in the middle of a connection the capture saw no start of.
	SYN bool
	// Time is the first packet's capture time, Unix nanoseconds.
	Time int64
}

// Segment is one TCP segment of a followed connection, placed in its
// connection's sequence space. It is valid during the call only.
type Segment struct {
	Packet *packet.Packet
	// Time is the capture time, Unix nanoseconds.
	Time int64
	// Side is ClientToServer or ServerToClient.
	Side int
	// Seq is where the payload starts in its side's stream, as an offset
	// from the stream's first byte (the one after the SYN); SeqOK says
	// that start is known (always, for a segment with payload).
	Seq   uint32
	SeqOK bool
	// Ack is the acknowledgement as an offset in the other side's
	// stream, AckOK says the segment has ACK set and that stream's start
	// is known; SACK[:NSACK] are its SACK blocks as offsets there.
	Ack   uint32
	AckOK bool
	SACK  [4]packet.SACKBlock
	NSACK int
}

// Observer receives what the tracker follows, from the goroutine that
// feeds it: every connection it opens (Open, which returns the
// observer's handle for it), every TCP segment of it until it forgets it
// (also after its handshake ended), every ICMP too-big quoting one of its
// segments, its handshake when emitted, and Close when it forgets it
// (idle past Config.Linger, evicted from a full table, replaced by a new
// connection on its four-tuple, not TLS, or at Flush). Calls for one
// connection come in that order; none may call back into the tracker.
type Observer interface {
	Open(c *Conn) int32
	Segment(h int32, s *Segment)
	TooBig(h int32, side int, p *packet.Packet)
	Handshake(h int32, hs *Handshake)
	Close(h int32)
}

// observe hands a segment of flow f to the observer. It runs after the
// tracker has placed the segment's SYN (so that a stream's start is
// known) and before anything can forget the flow.
func (t *Tracker) observe(f *flow, side int, p *packet.Packet, now int64) {
	if t.obs == nil {
		return
	}
	d, o := &f.d[side], &f.d[1-side]
	tc := &p.TCP
	s := &t.seg
	*s = Segment{Packet: p, Time: now, Side: side}
	seq := tc.Seq
	if tc.Flags.Has(packet.SYN) {
		seq++
	}
	if !d.haveBase && p.PayloadLen > 0 {
		// Where the tracker's own data accounting puts the stream's start:
		// set here for a flow whose handshake is over too.
		d.base, d.haveBase = seq, true
	}
	if d.haveBase {
		s.Seq, s.SeqOK = seq-d.base, true
	}
	if tc.Flags.Has(packet.ACK) && o.haveBase {
		s.Ack, s.AckOK = tc.Ack-o.base, true
		for _, b := range tc.Blocks() {
			s.SACK[s.NSACK] = packet.SACKBlock{Left: b.Left - o.base, Right: b.Right - o.base}
			s.NSACK++
		}
	}
	t.obs.Segment(f.oh, s)
}
