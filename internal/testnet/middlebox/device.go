// Package middlebox is the testbed's content-inspecting devices: firewalls
// on a router's forwarding path that reset or drop TLS connections for what
// their ClientHello says rather than for its size (scenarios S13-S17 in
// docs/testbed.md).
//
// A Device decides one IP packet at a time from its bytes and a small,
// bounded table of flows; it does no I/O, so it is tested with crafted
// packets. Run (Linux) feeds it the packets of an NFQUEUE queue, sends its
// verdicts and the resets it asks for; cmd/mtuscope-middlebox runs it in a
// router's namespace. Packets a device cannot read are always accepted.
package middlebox

import (
	"container/list"
	"fmt"
	"net/netip"
	"strings"
)

// Kind names how a device behaves.
type Kind string

// The devices, as users and vendors report them (issue 18).
const (
	// PQReject resets, both ways, a connection whose first ClientHello has
	// an X25519MLKEM768 (0x11ec) entry in its key_share extension, reading
	// the hello across segments and records; the segment that completes
	// the hello is dropped. Offering the group in supported_groups alone
	// passes (the device reads the first hello only).
	PQReject Kind = "pq-reject"
	// MLDSAReject resets likewise a connection whose first ClientHello
	// offers any of 0x0904-0x0906 in signature_algorithms.
	MLDSAReject Kind = "mldsa-reject"
	// SplitIntolerant reads only a connection's first data segment, does
	// not reassemble, and drops a ClientHello record that does not end in
	// that segment, and every later segment of that record (continuations
	// and retransmissions). A hello whose records each end in the segment
	// they start in passes, whatever its size.
	SplitIntolerant Kind = "split-intolerant"
	// LengthWindow drops (every copy of) a first ClientHello whose
	// handshake length field, the message without its 4-byte header, is
	// between 256 and 511 bytes: the F5 bug that RFC 7685's padding
	// extension works around.
	LengthWindow Kind = "length-window"
	// Observe reads every first ClientHello as PQReject does and accepts
	// everything: a tap that says what hellos crossed.
	Observe Kind = "observe"
)

// Length window of LengthWindow, on the handshake length field.
const (
	WindowLow  = 256
	WindowHigh = 511
)

// Kinds returns every device kind.
func Kinds() []Kind { return []Kind{PQReject, MLDSAReject, SplitIntolerant, LengthWindow, Observe} }

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return "", fmt.Errorf("middlebox: no device %q (want one of %s)", s, strings.Join(names, ", "))
}

// Action is what happens to a packet.
type Action int

// Actions.
const (
	Accept Action = iota
	Drop
	// Reset drops the packet and sends Decision.Resets.
	Reset
)

func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Reset:
		return "reset"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Decision is the device's answer for one packet.
type Decision struct {
	Action Action
	// Reason says why the packet was dropped or reset, for the log.
	Reason string
	// Hello is the ClientHello this packet completed the reading of (or,
	// for the devices that read one segment, began), nil otherwise.
	Hello *Hello
	// Resets are the IP packets a Reset sends: to the server, as from the
	// client, then to the client, as from the server.
	Resets [][]byte
}

// DefaultMaxFlows bounds a device's flow table.
const DefaultMaxFlows = 4096

// maxBuffer bounds the bytes a flow buffers while reading its hello: a
// hello of maxHello in records of a few bytes each takes several times its
// size.
const maxBuffer = 4 * maxHello

// MaxBuffered bounds the bytes all flows buffer together: a hello that
// would take more goes uninspected, as an overloaded firewall fails open.
const MaxBuffered = 16 << 20

// Device is one middlebox. Its zero value is not usable: make one with New.
// A Device is not safe for concurrent use.
type Device struct {
	kind     Kind
	maxFlows int
	flows    map[flowKey]*flow
	order    *list.List // of *flow, oldest first
	buffered int        // bytes held by all flows' buf
}

// New returns a device of the given kind whose flow table holds at most
// maxFlows flows (DefaultMaxFlows when maxFlows <= 0); the oldest flow is
// forgotten first.
func New(kind Kind, maxFlows int) (*Device, error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return nil, err
	}
	if maxFlows <= 0 {
		maxFlows = DefaultMaxFlows
	}
	return &Device{kind: kind, maxFlows: maxFlows, flows: map[flowKey]*flow{}, order: list.New()}, nil
}

// Kind returns the device's kind.
func (d *Device) Kind() Kind { return d.kind }

// Flows returns how many flows the device remembers.
func (d *Device) Flows() int { return len(d.flows) }

// Buffered returns how many bytes of unfinished hellos the device holds.
func (d *Device) Buffered() int { return d.buffered }

type flowKey struct{ src, dst netip.AddrPort }

type flowState int

const (
	inspecting flowState = iota
	passed
	dropping  // segments overlapping [start, end) are dropped
	resetting // every segment is dropped, data segments reset again
)

type flow struct {
	key      flowKey
	elem     *list.Element
	state    flowState
	start    uint32 // sequence number of the hello's first byte
	end      uint32
	rstSeq   uint32 // the server's next expected byte when the device reset
	buf      []byte
	segments int
}

// Decide returns what to do with one IP packet. Only packets from a
// client towards a server need to be shown to it; others are accepted,
// as is anything it cannot read.
func (d *Device) Decide(pkt []byte) Decision {
	seg, ok := parseSegment(pkt)
	if !ok {
		return Decision{}
	}
	key := flowKey{seg.Src, seg.Dst}
	f := d.flows[key]
	if f != nil && seg.Flags&flagSYN != 0 {
		d.forget(f) // the ports are reused by a new connection
		f = nil
	}
	if f == nil {
		if !helloRecord(seg.Payload) || seg.Flags&(flagSYN|flagRST) != 0 {
			return Decision{}
		}
		f = d.track(key, seg.Seq)
	}
	dec := d.decide(f, seg)
	if seg.Flags&(flagFIN|flagRST) != 0 {
		d.forget(f)
	}
	return dec
}

func (d *Device) decide(f *flow, seg segment) Decision {
	off := int32(seg.Seq - f.start)
	switch f.state {
	case passed:
		return Decision{}
	case dropping:
		end := int32(f.end - f.start)
		if len(seg.Payload) > 0 && off < end && off+int32(len(seg.Payload)) > 0 {
			return Decision{Action: Drop, Reason: "a later segment of a dropped ClientHello"}
		}
		return Decision{}
	case resetting:
		if len(seg.Payload) == 0 {
			return Decision{Action: Drop, Reason: "connection already reset"}
		}
		return d.reset(f, seg, "connection already reset")
	}
	switch d.kind {
	case SplitIntolerant:
		return d.splitIntolerant(f, seg)
	case LengthWindow:
		return d.lengthWindow(f, seg)
	}
	return d.reassembling(f, seg, off)
}

// splitIntolerant reads the hello's first segment only.
func (d *Device) splitIntolerant(f *flow, seg segment) Decision {
	p := seg.Payload
	dec := Decision{Hello: oneSegmentHello(p)}
	for at := 0; at < len(p) && p[at] == 0x16; {
		if len(p)-at < 5 {
			f.state, f.end = dropping, f.start+uint32(at+5+1<<14)
			dec.Action, dec.Reason = Drop, fmt.Sprintf("record header cut at byte %d of a %d-byte segment", at, len(p))
			return dec
		}
		n := int(p[at+3])<<8 | int(p[at+4])
		if at+5+n > len(p) {
			f.state, f.end = dropping, f.start+uint32(at+5+n)
			dec.Action, dec.Reason = Drop, fmt.Sprintf("ClientHello record of %d bytes does not end in its %d-byte first segment", 5+n, len(p)-at)
			return dec
		}
		at += 5 + n
	}
	f.state = passed
	return dec
}

// lengthWindow reads the handshake length from the hello's first segment.
func (d *Device) lengthWindow(f *flow, seg segment) Decision {
	p := seg.Payload
	dec := Decision{Hello: oneSegmentHello(p)}
	f.state = passed
	if len(p) < 9 {
		return dec // the length is not in this segment: let it be
	}
	n := int(p[6])<<16 | int(p[7])<<8 | int(p[8])
	if n >= WindowLow && n <= WindowHigh {
		f.state, f.end = dropping, f.start+uint32(5+(int(p[3])<<8|int(p[4])))
		dec.Action, dec.Reason = Drop, fmt.Sprintf("ClientHello handshake length %d in the %d-%d window", n, WindowLow, WindowHigh)
	}
	return dec
}

// reassembling buffers the hello's bytes in order until the whole message
// is there, then judges it.
func (d *Device) reassembling(f *flow, seg segment, off int32) Decision {
	have := int32(len(f.buf))
	end := off + int32(len(seg.Payload))
	if off < 0 || off > have || end <= have {
		// Before the hello, a duplicate, or beyond a gap: out-of-order
		// segments are not buffered (the hello then goes uninspected
		// unless they come again in order).
		return Decision{}
	}
	add := seg.Payload[have-off:]
	if int(end) > maxBuffer || d.buffered+len(add) > MaxBuffered {
		d.pass(f)
		return Decision{}
	}
	f.buf = append(f.buf, add...)
	d.buffered += len(add)
	f.segments++
	msg, records, done, err := reassemble(f.buf)
	if err != nil {
		d.pass(f)
		return Decision{}
	}
	if !done {
		return Decision{}
	}
	h, err := parseHello(msg)
	if err != nil {
		d.pass(f)
		return Decision{}
	}
	h.Records, h.Segments = records, f.segments
	var reason string
	switch {
	case d.kind == PQReject && h.PostQuantum():
		reason = "key share X25519MLKEM768 (0x11ec)"
	case d.kind == MLDSAReject && len(h.MLDSA) > 0:
		reason = fmt.Sprintf("signature algorithms ML-DSA %#04x", h.MLDSA)
	}
	if reason == "" {
		d.pass(f)
		return Decision{Hello: &h}
	}
	d.release(f)
	f.state = resetting
	f.rstSeq = f.start + uint32(have)
	dec := d.reset(f, seg, reason)
	dec.Hello = &h
	return dec
}

// reset drops seg and resets both ends as a firewall does: the server gets
// a reset at the next byte it expects, the client one at the next byte it
// expects, which its segment acknowledges.
func (d *Device) reset(f *flow, seg segment, reason string) Decision {
	return Decision{Action: Reset, Reason: reason, Resets: [][]byte{
		buildRST(seg.Src, seg.Dst, f.rstSeq, seg.Ack),
		buildRST(seg.Dst, seg.Src, seg.Ack, seg.Seq+uint32(len(seg.Payload))),
	}}
}

// oneSegmentHello reads the hello when it is whole in one segment.
func oneSegmentHello(p []byte) *Hello {
	msg, records, done, err := reassemble(p)
	if err != nil || !done {
		return nil
	}
	h, err := parseHello(msg)
	if err != nil {
		return nil
	}
	h.Records, h.Segments = records, 1
	return &h
}

func (d *Device) track(key flowKey, seq uint32) *flow {
	for len(d.flows) >= d.maxFlows {
		d.forget(d.order.Front().Value.(*flow))
	}
	f := &flow{key: key, start: seq}
	f.elem = d.order.PushBack(f)
	d.flows[key] = f
	return f
}

func (d *Device) pass(f *flow) {
	d.release(f)
	f.state = passed
}

// release frees the flow's buffer.
func (d *Device) release(f *flow) {
	d.buffered -= len(f.buf)
	f.buf = nil
}

func (d *Device) forget(f *flow) {
	d.release(f)
	d.order.Remove(f.elem)
	delete(d.flows, f.key)
}
