package analyze

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// natSeg is one packet of a conversation and where it was seen.
type natSeg struct {
	tcpSeg
	lost bool // dropped on the path: only the sender's capture has it
}

// TestPairSequenceShiftingNAT pairs a client-side and a server-side
// capture across a NAT that rewrites the client's address and port and
// shifts its sequence numbers (as some firewalls randomise ISNs): the
// flows pair by the SYN's TCP timestamp, and the full-size ClientHello
// segment is found lost upstream, the server's full-size segments lost
// downstream, the small ones delivered.
func TestPairSequenceShiftingNAT(t *testing.T) {
	c, s := testClient, testServer
	nat := netip.MustParseAddrPort("192.0.2.1:61000")
	const cisn, sisn, shift = 1000, 5000, 0x10000000
	ms := time.Millisecond
	hello := helloRecord(1512)
	flight := append([]byte{22, 3, 3, 0x0c, 0xe0}, make([]byte, 3314-5)...)
	conv := []natSeg{
		{tcpSeg: tcpSeg{src: c, dst: s, seq: cisn, syn: true, mss: 1460, tsVal: 777}},
		{tcpSeg: tcpSeg{src: s, dst: c, seq: sisn, ack: cisn + 1, syn: true, ackF: true, mss: 1460, after: ms}},
		{tcpSeg: tcpSeg{src: c, dst: s, seq: cisn + 1, ack: sisn + 1, ackF: true, after: ms}},
		// the hello's full-size head is lost, its tail arrives
		{tcpSeg: tcpSeg{src: c, dst: s, seq: cisn + 1, ack: sisn + 1, ackF: true, data: hello[:1448], after: ms}, lost: true},
		{tcpSeg: tcpSeg{src: c, dst: s, seq: cisn + 1 + 1448, ack: sisn + 1, ackF: true, data: hello[1448:], after: 10 * time.Microsecond}},
		{tcpSeg: tcpSeg{src: s, dst: c, seq: sisn + 1, ack: cisn + 1, ackF: true, sack: [][2]uint32{{cisn + 1 + 1448, cisn + 1 + 1512}}, after: ms}},
		{tcpSeg: tcpSeg{src: c, dst: s, seq: cisn + 1, ack: sisn + 1, ackF: true, data: hello[:1448], after: 200 * ms}, lost: true},
		// a second connection, from another port, at MSS 1360: its hello
		// crosses in 1400-byte packets, the server's flight does not
		// (its server MSS 1460 is not clamped)
	}
	c2 := netip.AddrPortFrom(c.Addr(), 40002)
	nat2 := netip.MustParseAddrPort("192.0.2.1:61001")
	const c2isn, s2isn = 9000, 70000
	conv2 := []natSeg{
		{tcpSeg: tcpSeg{src: c2, dst: s, seq: c2isn, syn: true, mss: 1460, tsVal: 888, after: ms}},
		{tcpSeg: tcpSeg{src: s, dst: c2, seq: s2isn, ack: c2isn + 1, syn: true, ackF: true, mss: 1460, after: ms}},
		{tcpSeg: tcpSeg{src: c2, dst: s, seq: c2isn + 1, ack: s2isn + 1, ackF: true, data: helloRecord(517), after: ms}},
		{tcpSeg: tcpSeg{src: s, dst: c2, seq: s2isn + 1, ack: c2isn + 518, ackF: true, after: 10 * time.Microsecond}},
		{tcpSeg: tcpSeg{src: s, dst: c2, seq: s2isn + 1, ack: c2isn + 518, ackF: true, data: flight[:1448], after: ms}, lost: true},
		{tcpSeg: tcpSeg{src: s, dst: c2, seq: s2isn + 1 + 1448, ack: c2isn + 518, ackF: true, data: flight[1448:2896], after: 10 * time.Microsecond}, lost: true},
		{tcpSeg: tcpSeg{src: s, dst: c2, seq: s2isn + 1 + 2896, ack: c2isn + 518, ackF: true, data: flight[2896:], after: 10 * time.Microsecond}},
		{tcpSeg: tcpSeg{src: c2, dst: s, seq: c2isn + 518, ack: s2isn + 1, ackF: true, sack: [][2]uint32{{s2isn + 1 + 2896, s2isn + 1 + 3314}}, after: ms}},
		{tcpSeg: tcpSeg{src: s, dst: c2, seq: s2isn + 1, ack: c2isn + 518, ackF: true, data: flight[:1448], after: 200 * ms}, lost: true},
		// the client gives up: both captures go on past the retransmission
		{tcpSeg: tcpSeg{src: c2, dst: s, seq: c2isn + 518, ack: s2isn + 1, ackF: true, fin: true, after: 500 * ms}},
	}
	cb, sb := newPcap(t), newPcap(t)
	for _, x := range append(conv, conv2...) {
		fromClient := x.src.Addr() == c.Addr()
		// the client's capture: everything it sent, what reached it
		if fromClient || !x.lost {
			cb.add(x.tcpSeg)
		} else {
			cb.now = cb.now.Add(x.after)
		}
		// the server's capture: behind the NAT, client's numbers shifted
		y := x.tcpSeg
		pub := nat
		if x.src == c2 || x.dst == c2 {
			pub = nat2
		}
		if fromClient {
			y.src, y.seq = pub, y.seq+shift
		} else {
			y.dst = pub
			if y.ackF {
				y.ack += shift
			}
		}
		if !fromClient && len(y.sack) > 0 {
			y.sack = [][2]uint32{{y.sack[0][0] + shift, y.sack[0][1] + shift}}
		}
		if !fromClient || !x.lost {
			sb.add(y)
		} else {
			sb.now = sb.now.Add(x.after)
		}
	}
	res, err := Pair(cb.file("client.pcap"), sb.file("server.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Matching
	if *res.MatchedFlows != 2 || m.ByTimestamp != 2 || m.SequenceShifted != 2 || m.PortRewritten != 2 || m.AddressRewritten != 2 {
		t.Fatalf("matching %+v, want 2 flows paired by timestamp behind a NAT", m)
	}
	if res.Verdict != diagnose.VerdictBlackhole || res.Direction != diagnose.Both {
		t.Errorf("verdict %s %s, want pmtud_blackhole both; %+v", res.Verdict, res.Direction, res.Findings)
	}
	var up, down int
	for _, l := range res.Lost {
		if l.How != "not_seen_at_receiver" || l.IPSize != 1500 {
			t.Errorf("lost %+v, want 1500-byte packets not seen at the receiver", l)
		}
		switch l.Direction {
		case diagnose.Upstream:
			up++
		case diagnose.Downstream:
			down++
		}
	}
	if up != 2 || down != 3 {
		t.Errorf("lost %d up, %d down; want 2 and 3: %+v", up, down, res.Lost)
	}
	// the second hello (569) and the first flight's tail (470)
	if res.Upstream.LargestDelivered != 569 || res.Downstream.LargestDelivered != 470 {
		t.Errorf("delivered up %d down %d, want 569 and 470", res.Upstream.LargestDelivered, res.Downstream.LargestDelivered)
	}
	for _, h := range res.Handshakes {
		if h.ClientAtServer == nil || h.ClientAtServer.Addr() != nat.Addr() {
			t.Errorf("handshake %+v: client at server %v, want the NAT's address", h.Handshake, h.ClientAtServer)
		}
	}
}
