package middlebox

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/mtuscope/mtuscope/packet"
)

const (
	x25519 = 0x001d
	pq     = GroupX25519MLKEM768
)

func newDevice(t testing.TB, k Kind) *Device {
	t.Helper()
	d, err := New(k, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDevices feeds crafted and crypto/tls hellos, cut into segments and
// records in the ways clients and probes cut them, to every device.
func TestDevices(t *testing.T) {
	pqHello := craft(t, helloSpec{shares: []uint16{pq, x25519}, length: 1700}) // Chromium's size
	classic := craft(t, helloSpec{shares: []uint16{x25519}})
	groupOnly := craft(t, helloSpec{shares: []uint16{x25519}, groups: []uint16{pq, x25519}})
	mldsa := craft(t, helloSpec{shares: []uint16{x25519}, sigalgs: []uint16{0x0403, 0x0905, 0x0804}})
	mldsaEdge := craft(t, helloSpec{shares: []uint16{x25519}, sigalgs: []uint16{0x0906}})
	nearMLDSA := craft(t, helloSpec{shares: []uint16{x25519}, sigalgs: []uint16{0x0903, 0x0907, 0x0807}})
	goPQ := goHello(t, nil)
	goClassic := goHello(t, []tls.CurveID{tls.X25519})
	window := func(n int) []byte { return records(craft(t, helloSpec{shares: []uint16{x25519}, length: n}), 1<<14) }
	one := func(msg []byte) []byte { return records(msg, 1<<14) }
	all := func(a Action, n int) []Action { return slices.Repeat([]Action{a}, n) }

	cases := []struct {
		name   string
		kind   Kind
		stream []byte
		sizes  []int
		want   []Action
	}{
		{"pq hello in one segment", PQReject, one(pqHello), nil, []Action{Reset}},
		{"pq hello in two segments", PQReject, one(pqHello), []int{1000}, []Action{Accept, Reset}},
		{"pq hello, header alone first", PQReject, one(pqHello), []int{5}, []Action{Accept, Reset}},
		{"pq hello in 100-byte records", PQReject, records(pqHello, 100), nil, []Action{Reset}},
		{"pq hello in records across segments", PQReject, records(pqHello, 700), []int{705, 705}, []Action{Accept, Accept, Reset}},
		{"crypto/tls default hello", PQReject, goPQ, []int{1448}, []Action{Accept, Reset}},
		{"classic hello", PQReject, one(classic), nil, []Action{Accept}},
		{"crypto/tls X25519 only", PQReject, goClassic, nil, []Action{Accept}},
		{"pq group without its share", PQReject, one(groupOnly), nil, []Action{Accept}},
		{"mldsa hello", MLDSAReject, one(mldsa), nil, []Action{Reset}},
		{"mldsa 0x0906 alone", MLDSAReject, one(mldsaEdge), nil, []Action{Reset}},
		{"around mldsa", MLDSAReject, one(nearMLDSA), nil, []Action{Accept}},
		{"pq hello to the mldsa device", MLDSAReject, one(pqHello), nil, []Action{Accept}},
		{"mldsa hello to the pq device", PQReject, one(mldsa), nil, []Action{Accept}},
		{"split: two segments", SplitIntolerant, one(pqHello), []int{1448}, all(Drop, 2)},
		{"split: header alone", SplitIntolerant, one(pqHello), []int{5}, all(Drop, 2)},
		{"split: header cut", SplitIntolerant, one(classic), []int{3}, all(Drop, 2)},
		{"split: one big segment", SplitIntolerant, one(pqHello), nil, []Action{Accept}},
		{"split: two records, one segment", SplitIntolerant, records(pqHello, 800), nil, []Action{Accept}},
		{"split: each record in its segment", SplitIntolerant, records(pqHello, 800), []int{805}, all(Accept, 2)},
		{"split: second record cut", SplitIntolerant, records(pqHello, 800), []int{1000}, all(Drop, 2)},
		{"split: small hello", SplitIntolerant, one(classic), nil, []Action{Accept}},
		{"split: hello then 3 bytes of data", SplitIntolerant, append(one(classic), 0x17, 3, 3), nil, []Action{Accept}},
		{"split: hello then a cut handshake header", SplitIntolerant, append(one(classic), 0x16, 3), nil, []Action{Drop}},
		{"window: 255", LengthWindow, window(255), nil, []Action{Accept}},
		{"window: 256", LengthWindow, window(256), nil, []Action{Drop}},
		{"window: 400 in two segments", LengthWindow, window(400), []int{200}, all(Drop, 2)},
		{"window: 511", LengthWindow, window(511), nil, []Action{Drop}},
		{"window: 512", LengthWindow, window(512), nil, []Action{Accept}},
		{"window: big pq hello", LengthWindow, one(pqHello), []int{1448}, all(Accept, 2)},
		{"window: length not in the first segment", LengthWindow, window(300), []int{7}, all(Accept, 2)},
		{"observe: pq hello", Observe, one(pqHello), []int{600, 600}, all(Accept, 3)},
	}
	for _, c := range cases {
		for _, fam := range []int{4, 6} {
			t.Run(fmt.Sprintf("%s/v%d", c.name, fam), func(t *testing.T) {
				d := newDevice(t, c.kind)
				got := actions(feed(d, fam, c.stream, c.sizes...))
				if !slices.Equal(got, c.want) {
					t.Errorf("actions %v, want %v", got, c.want)
				}
				// Every copy of a judged segment is judged the same.
				again := actions(feed(d, fam, c.stream, c.sizes...))
				if last := len(got) - 1; got[last] != Accept && again[0] == Accept {
					t.Errorf("retransmission %v after %v", again, got)
				}
			})
		}
	}
}

// TestResetNumbers checks the two resets a firewall sends: the server's at
// the next byte it expects (after the segments already let through), the
// client's at the next byte the client expects, each acknowledging the
// other side, with valid checksums and the device's own TTL.
func TestResetNumbers(t *testing.T) {
	stream := records(craft(t, helloSpec{shares: []uint16{pq, x25519}}), 1<<14)
	for _, fam := range []int{4, 6} {
		d := newDevice(t, PQReject)
		ds := feed(d, fam, stream, 1000)
		if ds[1].Action != Reset || len(ds[1].Resets) != 2 {
			t.Fatalf("v%d: %+v", fam, ds[1])
		}
		c, s := ends(fam)
		want := []segment{
			{Src: c, Dst: s, Seq: 1000 + 1000, Ack: 5000, Flags: flagRST | flagACK},
			{Src: s, Dst: c, Seq: 5000, Ack: 1000 + uint32(len(stream)), Flags: flagRST | flagACK},
		}
		for i, r := range ds[1].Resets {
			got, ok := parseSegment(r)
			if !ok {
				t.Fatalf("v%d: reset %d unreadable: % x", fam, i, r)
			}
			if len(got.Payload) != 0 || fmt.Sprint(got) != fmt.Sprint(want[i]) {
				t.Errorf("v%d: reset %d = %+v, want %+v", fam, i, got, want[i])
			}
			checkSums(t, r)
		}
		// A retransmission of the last segment is reset again, with the
		// same numbers; a bare ACK of the flow is dropped.
		c2, s2 := ends(fam)
		again := d.Decide(tcpPacket(c2, s2, 2000, 5000, flagACK, stream[1000:]))
		if again.Action != Reset || string(again.Resets[0]) != string(ds[1].Resets[0]) {
			t.Errorf("v%d: retransmission: %+v", fam, again)
		}
		if ack := d.Decide(tcpPacket(c2, s2, 2000, 5000, flagACK, nil)); ack.Action != Drop {
			t.Errorf("v%d: ACK after the reset: %v", fam, ack.Action)
		}
	}
}

// checkSums verifies an IP packet's header checksum (IPv4) and its TCP
// checksum, and the TTL the device sends with.
func checkSums(t *testing.T, pkt []byte) {
	t.Helper()
	seg, _ := parseSegment(pkt)
	var tcp []byte
	ttl := pkt[7]
	if pkt[0]>>4 == 4 {
		if packet.Checksum(packet.Sum(0, pkt[:20])) != 0 {
			t.Errorf("IPv4 header checksum wrong: % x", pkt[:20])
		}
		ttl, tcp = pkt[8], pkt[20:]
	} else {
		tcp = pkt[40:]
	}
	if packet.Checksum(packet.Sum(packet.PseudoHeaderSum(seg.Src.Addr(), seg.Dst.Addr(), 6, len(tcp)), tcp)) != 0 {
		t.Errorf("TCP checksum wrong: % x", tcp)
	}
	if ttl != rstTTL {
		t.Errorf("TTL %d, want %d", ttl, rstTTL)
	}
}

// TestHelloRead checks what the reassembling devices report of a hello.
func TestHelloRead(t *testing.T) {
	msg := craft(t, helloSpec{shares: []uint16{pq, x25519}, sigalgs: []uint16{0x0904, 0x0403, 0x0906}})
	d := newDevice(t, Observe)
	ds := feed(d, 6, records(msg, 1000), 500, 500)
	h := ds[len(ds)-1].Hello
	if h == nil {
		t.Fatal("no hello read")
	}
	want := Hello{Length: len(msg) - 4, KeyShares: []uint16{pq, x25519}, MLDSA: []uint16{0x0904, 0x0906}, Records: 2, Segments: 3}
	if fmt.Sprint(*h) != fmt.Sprint(want) || !h.PostQuantum() {
		t.Errorf("hello %+v, want %+v", *h, want)
	}
	if ds[0].Hello != nil || ds[1].Hello != nil {
		t.Error("a hello reported before it was whole")
	}
}

// TestUnreadable: anything a device cannot read is accepted and leaves no
// state behind.
func TestUnreadable(t *testing.T) {
	c, s := ends(4)
	hello := records(craft(t, helloSpec{shares: []uint16{pq}}), 1<<14)
	frag := tcpPacket(c, s, 1, 1, flagACK, hello)
	binary.BigEndian.PutUint16(frag[6:8], 0x2000) // more fragments
	short := tcpPacket(c, s, 1, 1, flagACK, hello)
	binary.BigEndian.PutUint16(short[2:4], 30) // total length cuts TCP
	udp := tcpPacket(c, s, 1, 1, flagACK, hello)
	udp[9] = 17
	c6, s6 := ends(6)
	v6frag := tcpPacket(c6, s6, 1, 1, flagACK, hello)
	v6frag[6] = 44
	inputs := map[string][]byte{
		"empty": nil, "one byte": {0x45}, "IPv4 fragment": frag, "IPv4 cut": short, "UDP": udp,
		"IPv6 fragment header": v6frag, "version 5": append([]byte{0x50}, frag[1:]...),
		"HTTP":             tcpPacket(c, s, 1, 1, flagACK, []byte("GET / HTTP/1.1\r\n\r\n")),
		"application data": tcpPacket(c, s, 1, 1, flagACK, []byte{0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5}),
		"SYN with data":    tcpPacket(c, s, 1, 0, flagSYN, hello),
		"bare ACK":         tcpPacket(c, s, 1, 1, flagACK, nil),
	}
	for _, k := range Kinds() {
		for name, pkt := range inputs {
			d := newDevice(t, k)
			if got := d.Decide(pkt); got.Action != Accept || d.Flows() != 0 {
				t.Errorf("%s: %s: %v, %d flows", k, name, got.Action, d.Flows())
			}
		}
	}
}

// TestFlowTable: the table holds at most its bound, FIN and RST forget a
// flow, and ports reused by a new SYN start afresh.
func TestFlowTable(t *testing.T) {
	d, err := New(PQReject, 8)
	if err != nil {
		t.Fatal(err)
	}
	stream := records(craft(t, helloSpec{shares: []uint16{pq}}), 1<<14)
	_, s := ends(4)
	for i := range 100 {
		c := netipPort(i)
		d.Decide(tcpPacket(c, s, 1, 1, flagACK, stream[:100]))
	}
	if d.Flows() != 8 {
		t.Errorf("%d flows, want 8", d.Flows())
	}
	c := netipPort(99)
	d.Decide(tcpPacket(c, s, 101, 1, flagACK|flagFIN, nil))
	if d.Flows() != 7 {
		t.Errorf("FIN left %d flows, want 7", d.Flows())
	}
	// The newest flow, half read, then its ports reused: the new hello is
	// read from its own start.
	c = netipPort(98)
	d.Decide(tcpPacket(c, s, 7, 0, flagSYN, nil))
	if got := d.Decide(tcpPacket(c, s, 8, 1, flagACK, stream)); got.Action != Reset {
		t.Errorf("hello on reused ports: %v", got.Action)
	}
	if _, err := New("nonsense", 0); err == nil {
		t.Error("New accepted an unknown kind")
	}
}

func netipPort(i int) netip.AddrPort {
	c, _ := ends(4)
	return netip.AddrPortFrom(c.Addr(), uint16(30000+i))
}

// TestBufferBound: hellos left unfinished on many flows never hold more
// than MaxBuffered bytes together; beyond it a hello goes uninspected.
func TestBufferBound(t *testing.T) {
	d, err := New(PQReject, 100000)
	if err != nil {
		t.Fatal(err)
	}
	big := records(craft(t, helloSpec{shares: []uint16{pq}, length: 16000}), 1<<14)
	_, s := ends(6)
	c0, _ := ends(6)
	flows := 2 * MaxBuffered / 15000
	for i := range flows {
		c := netip.AddrPortFrom(c0.Addr(), uint16(i))
		d.Decide(tcpPacket(c, s, 1, 1, flagACK, big[:15000]))
		if d.Buffered() > MaxBuffered {
			t.Fatalf("%d bytes buffered after %d flows, bound %d", d.Buffered(), i+1, MaxBuffered)
		}
	}
	if d.Buffered() < MaxBuffered-15000 {
		t.Errorf("%d bytes buffered: the bound was not reached, the test shows nothing", d.Buffered())
	}
	// Forgetting the flows gives the bytes back.
	for i := range flows {
		c := netip.AddrPortFrom(c0.Addr(), uint16(i))
		d.Decide(tcpPacket(c, s, 15001, 1, flagACK|flagRST, nil))
	}
	if d.Buffered() != 0 || d.Flows() != 0 {
		t.Errorf("after every flow's reset: %d bytes, %d flows", d.Buffered(), d.Flows())
	}
}
