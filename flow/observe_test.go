package flow_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// recorder is an Observer that writes what it is handed as lines.
type recorder struct {
	lines []string
	next  int32
	open  map[int32]bool
}

func (r *recorder) Open(c *flow.Conn) int32 {
	r.next++
	if r.open == nil {
		r.open = map[int32]bool{}
	}
	r.open[r.next] = true
	r.lines = append(r.lines, fmt.Sprintf("open %d %s>%s syn=%v", r.next, c.Client, c.Server, c.SYN))
	return r.next
}

func (r *recorder) Segment(h int32, s *flow.Segment) {
	if !r.open[h] {
		r.lines = append(r.lines, fmt.Sprintf("segment for closed %d", h))
	}
	l := fmt.Sprintf("seg %d side=%d flags=%s len=%d", h, s.Side, s.Packet.TCP.Flags, s.Packet.PayloadLen)
	if s.SeqOK {
		l += fmt.Sprintf(" seq=%d", s.Seq)
	}
	if s.AckOK {
		l += fmt.Sprintf(" ack=%d", s.Ack)
	}
	for _, b := range s.SACK[:s.NSACK] {
		l += fmt.Sprintf(" sack=%d-%d", b.Left, b.Right)
	}
	r.lines = append(r.lines, l)
}

func (r *recorder) TooBig(h int32, side int, p *packet.Packet) {
	r.lines = append(r.lines, fmt.Sprintf("icmp %d side=%d mtu=%d", h, side, p.ICMP.MTU))
}

func (r *recorder) Handshake(h int32, hs *flow.Handshake) {
	r.lines = append(r.lines, fmt.Sprintf("handshake %d %s", h, hs.Outcome))
}

func (r *recorder) Close(h int32) {
	delete(r.open, h)
	r.lines = append(r.lines, fmt.Sprintf("close %d", h))
}

// TestObserver follows one connection through the Observer: its
// segments placed in each stream (offsets from the byte after the SYN,
// acknowledgements and SACK blocks in the other stream), an ICMP too-big
// quoting it, its handshake, the segments after the handshake, a new
// connection on the same four-tuple, and Close for each when it is
// forgotten (replaced, or at Flush).
func TestObserver(t *testing.T) {
	rec := &recorder{}
	f := newFeeder(t, flow.Config{Observer: rec})
	k := &conn{c: cli4, s: srv4, cseq: 1001, sseq: 5001}
	k.open(f, 1460)
	k.client(f, record(22, 300, 1), -1)
	k.ackClient(f)
	flight := k.server(f, record(22, 1400, 2))
	f.raw(tooBig(netip.MustParseAddr("192.0.2.1"), flight, 1400), time.Millisecond)
	k.server(f, record(23, 100))
	// The flight's head lost: the client acknowledges its tail by SACK.
	f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq - 1510, flags: packet.ACK, sack: []packet.SACKBlock{{Left: k.sseq - 105, Right: k.sseq}}}, time.Millisecond)
	k.ackServer(f)
	k.client(f, record(23, 40), -1)
	k.client(f, record(23, 40), -1) // after the handshake
	// The client reuses its port: a SYN with a new ISN.
	f.send(seg{src: k.c, dst: k.s, seq: 90000, flags: packet.SYN, mss: 1460}, time.Millisecond)
	f.tr.Flush(f.now)
	want := []string{
		"open 1 198.51.100.2:40000>203.0.113.10:443 syn=true",
		"seg 1 side=0 flags=S len=0 seq=0", // no ACK flag: its ack field unread
		"seg 1 side=1 flags=SA len=0 seq=0 ack=0",
		"seg 1 side=0 flags=A len=0 seq=0 ack=0",
		"seg 1 side=0 flags=PA len=305 seq=0 ack=0",
		"seg 1 side=1 flags=A len=0 seq=0 ack=305",
		"seg 1 side=1 flags=PA len=1405 seq=0 ack=305",
		"icmp 1 side=1 mtu=1400",
		"seg 1 side=1 flags=PA len=105 seq=1405 ack=305",
		"seg 1 side=0 flags=A len=0 seq=305 ack=0 sack=1405-1510",
		"seg 1 side=0 flags=A len=0 seq=305 ack=1510",
		"seg 1 side=0 flags=PA len=45 seq=305 ack=1510",
		"handshake 1 completed",
		"seg 1 side=0 flags=PA len=45 seq=350 ack=1510", // after the handshake
		"close 1", // replaced by a new connection on the same four-tuple
		"open 2 198.51.100.2:40000>203.0.113.10:443 syn=true",
		"seg 2 side=0 flags=S len=0 seq=0",
		"close 2", // Flush
	}
	got := rec.lines
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("observer saw\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if len(f.got) != 1 || f.got[0].Outcome != "completed" {
		t.Errorf("emitted %+v", f.got)
	}
}
