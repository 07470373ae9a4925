package flow_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"math"
	mrand "math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/tlswire"
)

// seg describes one crafted TCP segment.
type seg struct {
	src, dst   netip.AddrPort
	seq, ack   uint32
	flags      packet.TCPFlags
	mss        uint16
	sack       []packet.SACKBlock
	payload    []byte
	snap       int // bytes of payload captured, -1 all
	hop        uint8
	ipID       uint16
	fragOffset int
	moreFrags  bool
}

// raw builds the IP packet (link type raw) for s.
func (s seg) raw() []byte {
	var opts []byte
	if s.mss > 0 {
		opts = append(opts, 2, 4, byte(s.mss>>8), byte(s.mss))
	}
	if len(s.sack) > 0 {
		opts = append(opts, 1, 1, 5, byte(2+8*len(s.sack)))
		for _, b := range s.sack {
			opts = binary.BigEndian.AppendUint32(opts, b.Left)
			opts = binary.BigEndian.AppendUint32(opts, b.Right)
		}
	}
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	tcp := make([]byte, 20, 20+len(opts)+len(s.payload))
	binary.BigEndian.PutUint16(tcp[0:], s.src.Port())
	binary.BigEndian.PutUint16(tcp[2:], s.dst.Port())
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], s.ack)
	tcp[12] = byte((20 + len(opts)) / 4 << 4)
	tcp[13] = byte(s.flags)
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	tcp = append(tcp, opts...)
	tcp = append(tcp, s.payload...)
	hop := s.hop
	if hop == 0 {
		hop = 64
	}
	var ip []byte
	if s.src.Addr().Is4() {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		binary.BigEndian.PutUint16(ip[4:], s.ipID)
		if s.fragOffset > 0 || s.moreFrags {
			binary.BigEndian.PutUint16(ip[6:], uint16(s.fragOffset/8))
			if s.moreFrags {
				ip[6] |= 0x20
			}
		} else {
			ip[6] = 0x40
		}
		ip[8], ip[9] = hop, packet.ProtoTCP
		a, b := s.src.Addr().As4(), s.dst.Addr().As4()
		copy(ip[12:], a[:])
		copy(ip[16:], b[:])
	} else {
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		ip[6], ip[7] = packet.ProtoTCP, hop
		a, b := s.src.Addr().As16(), s.dst.Addr().As16()
		copy(ip[8:], a[:])
		copy(ip[24:], b[:])
	}
	out := append(ip, tcp...)
	if s.snap >= 0 && s.snap < len(s.payload) {
		out = out[:len(out)-len(s.payload)+s.snap]
	}
	return out
}

// tooBig builds an ICMP fragmentation-needed quoting the segment q.
func tooBig(router netip.Addr, q seg, mtu int) []byte {
	quote := q.raw()[:48]
	icmp := []byte{3, 4, 0, 0, 0, 0, byte(mtu >> 8), byte(mtu)}
	icmp = append(icmp, quote...)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
	ip[8], ip[9] = 64, packet.ProtoICMP
	a, b := router.As4(), q.src.Addr().As4()
	copy(ip[12:], a[:])
	copy(ip[16:], b[:])
	return append(ip, icmp...)
}

// feeder gives crafted packets to a tracker through the real decoder and
// collects what it emits.
type feeder struct {
	t   testing.TB
	tr  *flow.Tracker
	now time.Time
	got []flow.Handshake
	cfg flow.Config
}

func newFeeder(t testing.TB, cfg flow.Config) *feeder {
	f := &feeder{t: t, now: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)}
	cfg.Emit = func(h flow.Handshake) { f.got = append(f.got, h) }
	f.cfg = cfg
	f.tr = flow.NewTracker(cfg)
	return f
}

func (f *feeder) raw(b []byte, after time.Duration) {
	f.now = f.now.Add(after)
	var p packet.Packet
	if err := packet.Decode(packet.LinkRaw, b, &p); err != nil {
		f.t.Fatalf("crafted packet does not decode: %v", err)
	}
	f.tr.Packet(&p, f.now)
	if st := f.tr.Stats(); st.Open > st.Max {
		f.t.Fatalf("%d flows open, bound %d", st.Open, st.Max)
	}
}

func (f *feeder) send(s seg, after time.Duration) {
	if s.snap == 0 {
		s.snap = -1
	}
	f.raw(s.raw(), after)
}

// conn is a crafted connection with both sequence spaces.
type conn struct {
	c, s       netip.AddrPort
	cseq, sseq uint32 // next byte each side sends
	hop        uint8
}

func (k *conn) open(f *feeder, mss uint16) {
	f.send(seg{src: k.c, dst: k.s, seq: k.cseq - 1, flags: packet.SYN, mss: mss}, time.Millisecond)
	f.send(seg{src: k.s, dst: k.c, seq: k.sseq - 1, ack: k.cseq, flags: packet.SYN | packet.ACK, mss: mss}, time.Millisecond)
	f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq, flags: packet.ACK}, time.Millisecond)
}

// client sends b from the client, advancing its sequence.
func (k *conn) client(f *feeder, b []byte, snap int) seg {
	s := seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq, flags: packet.ACK | packet.PSH, payload: b, snap: snap, hop: k.hop}
	f.send(s, time.Millisecond)
	k.cseq += uint32(len(b))
	return s
}

func (k *conn) server(f *feeder, b []byte) seg {
	s := seg{src: k.s, dst: k.c, seq: k.sseq, ack: k.cseq, flags: packet.ACK | packet.PSH, payload: b, hop: k.hop}
	f.send(s, time.Millisecond)
	k.sseq += uint32(len(b))
	return s
}

func (k *conn) ackClient(f *feeder, sack ...packet.SACKBlock) {
	f.send(seg{src: k.s, dst: k.c, seq: k.sseq, ack: k.cseq, flags: packet.ACK, sack: sack}, time.Millisecond)
}

func (k *conn) ackServer(f *feeder, sack ...packet.SACKBlock) {
	f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq, flags: packet.ACK, sack: sack}, time.Millisecond)
}

// record returns a TLS record of type typ whose body starts with first
// and is n bytes long.
func record(typ byte, n int, first ...byte) []byte {
	b := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	body := make([]byte, n)
	copy(body, first)
	return append(b, body...)
}

func pqHello(t testing.TB) []byte {
	h, err := tlswire.Build(tlswire.HelloSpec{ServerName: "example.test", Size: 1800, Groups: []tlswire.Group{tlswire.GroupX25519MLKEM768, tlswire.GroupX25519}}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return h.Record
}

var (
	cli4 = netip.MustParseAddrPort("198.51.100.2:40000")
	srv4 = netip.MustParseAddrPort("203.0.113.10:443")
	cli6 = netip.MustParseAddrPort("[2001:db8:100::2]:40000")
	srv6 = netip.MustParseAddrPort("[2001:db8:300::10]:443")
)

// handshake runs a whole handshake on k: hello, flight, client Finished.
func handshake(t testing.TB, f *feeder, k *conn, hello []byte) {
	k.open(f, 1460)
	for b := hello; len(b) > 0; {
		n := min(len(b), 1448)
		k.client(f, b[:n], -1)
		b = b[n:]
	}
	k.ackClient(f)
	k.server(f, append(record(22, 90, 2), record(20, 1, 1)...))
	k.server(f, record(23, 1400))
	k.server(f, record(23, 600))
	k.ackServer(f)
	k.client(f, append(record(20, 1, 1), record(23, 53)...), -1)
}

// TestCrafted feeds crafted conversations through the decoder: the corner
// cases a capture holds that the testbed does not make on demand.
func TestCrafted(t *testing.T) {
	hello := pqHello(t)

	t.Run("sequence wrap", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: math.MaxUint32 - 700, sseq: math.MaxUint32 - 20}
		handshake(t, f, k, hello)
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.Completed {
			t.Fatalf("got %+v, want one completed handshake", f.got)
		}
		h := f.got[0]
		if h.HelloBytes != len(hello) || h.SNI != "example.test" || !h.PQKeyShare || h.HelloSegments != 2 {
			t.Errorf("hello evidence %+v, want %d bytes in 2 segments, SNI, PQ", h, len(hello))
		}
	})

	t.Run("port reused", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		handshake(t, f, &conn{c: cli4, s: srv4, cseq: 1000, sseq: 2000}, hello)
		// The same four-tuple again a second later, new sequence numbers.
		f.now = f.now.Add(time.Second)
		handshake(t, f, &conn{c: cli4, s: srv4, cseq: 9000, sseq: 7000}, hello)
		if len(f.got) != 2 || f.got[0].Outcome != diagnose.Completed || f.got[1].Outcome != diagnose.Completed {
			t.Fatalf("got %+v, want two completed handshakes", f.got)
		}
	})

	t.Run("mid-flow, IPv6", func(t *testing.T) {
		f := newFeeder(t, flow.Config{})
		k := &conn{c: cli6, s: srv6, cseq: 1000, sseq: 5000}
		k.client(f, hello, -1)
		k.ackClient(f)
		k.server(f, record(22, 200, 2))
		k.ackServer(f)
		k.client(f, record(23, 60), -1)
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.Completed || f.got[0].Family != 6 || f.got[0].Client != cli6 {
			t.Fatalf("got %+v, want one completed IPv6 handshake from %s", f.got, cli6)
		}
	})

	t.Run("snaplen-truncated hello", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 1, sseq: 1}
		k.open(f, 1460)
		k.client(f, hello[:1448], 96)
		k.client(f, hello[1448:], 96)
		k.ackClient(f)
		f.tr.Advance(f.now.Add(time.Minute))
		if len(f.got) != 1 {
			t.Fatalf("got %d handshakes", len(f.got))
		}
		h := f.got[0]
		if !h.HelloTruncated || h.HelloBytes != len(hello) || h.Outcome != diagnose.Timeout {
			t.Errorf("got %+v, want a truncated hello of %d bytes, timeout (server silent)", h, len(hello))
		}
	})

	t.Run("stalled hello seen at the server", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 7, sseq: 9, hop: 62}
		k.open(f, 1460)
		// The head never arrives; the tail does, out of order.
		k.cseq += 1448
		k.client(f, hello[1448:], -1)
		k.cseq -= uint32(len(hello))
		tail := packet.SACKBlock{Left: 7 + 1448, Right: 7 + uint32(len(hello))}
		k.ackClient(f, tail)
		k.ackClient(f, tail)
		f.send(seg{src: k.c, dst: k.s, seq: 7 + uint32(len(hello)), ack: k.sseq, flags: packet.FIN | packet.ACK, hop: 62}, 3*time.Second)
		if len(f.got) != 1 {
			t.Fatalf("got %d handshakes", len(f.got))
		}
		h := f.got[0]
		if h.Outcome != diagnose.StalledClientHello || !h.Up.Holds(1400) || h.Up.Lost != 1448+40 {
			t.Errorf("got %s (%s) up %+v, want stalled_clienthello, lost 1488", h.Outcome, h.Detail, h.Up)
		}
	})

	// The server's flight leaves as one TSO super-segment of 3474 bytes:
	// 1460 + 1460 + 554 on the wire (MSS 1460, no timestamps).
	flight := append(record(22, 90, 2), record(23, 3474-95-5)...)
	head := func(k *conn, n int) seg {
		return seg{src: k.s, dst: k.c, seq: 200, ack: k.cseq, flags: packet.ACK, payload: flight[:n]}
	}
	t.Run("super-segment flight stalled", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 200}
		k.open(f, 1460)
		k.client(f, record(22, 300, 1), -1)
		k.ackClient(f)
		k.server(f, flight)
		k.sseq = 200
		tail := packet.SACKBlock{Left: 200 + 2920, Right: 200 + 3474}
		k.ackServer(f, tail)
		for range 3 {
			f.send(head(k, 1460), time.Second)
			k.ackServer(f, tail)
		}
		f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: 200, flags: packet.RST}, time.Second)
		if len(f.got) != 1 {
			t.Fatalf("got %d handshakes", len(f.got))
		}
		h := f.got[0]
		if h.Outcome != diagnose.StalledServerFlight || h.Down.Lost != 1500 || h.Down.Delivered != 554+40 {
			t.Errorf("got %s (%s) down %+v, want stalled_server_flight, {594 1500}", h.Outcome, h.Detail, h.Down)
		}
	})

	t.Run("PMTUD works: ICMP, smaller retransmission", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 200}
		k.open(f, 1460)
		k.client(f, record(22, 300, 1), -1)
		k.ackClient(f)
		k.server(f, flight)
		k.sseq = 200
		f.raw(tooBig(netip.MustParseAddr("192.0.2.2"), head(k, 1460), 1400), time.Millisecond)
		k.ackServer(f, packet.SACKBlock{Left: 200 + 2920, Right: 200 + 3474})
		f.send(head(k, 1360), time.Millisecond)
		k.sseq = 200 + 1360
		k.ackServer(f, packet.SACKBlock{Left: 200 + 2920, Right: 200 + 3474})
		f.send(seg{src: k.s, dst: k.c, seq: 200 + 1360, ack: k.cseq, flags: packet.ACK, payload: flight[1360:2720]}, time.Millisecond)
		f.send(seg{src: k.s, dst: k.c, seq: 200 + 2720, ack: k.cseq, flags: packet.ACK, payload: flight[2720:2920]}, time.Millisecond)
		k.sseq = 200 + 3474
		k.ackServer(f)
		k.client(f, record(23, 60), -1)
		if len(f.got) != 1 {
			t.Fatalf("got %d handshakes", len(f.got))
		}
		h := f.got[0]
		if h.Outcome != diagnose.Completed || h.Down != (flow.Bracket{Delivered: 1400, Lost: 1500}) || h.TooBig != 1 || h.TooBigMTU != 1400 {
			t.Errorf("got %s (%s) down %+v icmp %d/%d, want completed, {1400 1500}, one ICMP at 1400", h.Outcome, h.Detail, h.Down, h.TooBig, h.TooBigMTU)
		}
	})

	t.Run("SYN flood", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}, MaxFlows: 1000})
		rng := mrand.New(mrand.NewPCG(1, 2))
		for i := range 100000 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(rng.IntN(60000)+1024))
			f.send(seg{src: src, dst: srv4, seq: rng.Uint32(), flags: packet.SYN, mss: 1460}, time.Microsecond)
		}
		// A real handshake amid the flood is still seen.
		handshake(t, f, &conn{c: cli4, s: srv4, cseq: 5, sseq: 6}, hello)
		f.tr.Flush(f.now)
		st := f.tr.Stats()
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.Completed {
			t.Errorf("emitted %d handshakes (%+v), want the real one only", len(f.got), f.got)
		}
		if st.Evicted == 0 || st.HalfOpen < 99000 || st.Open != 0 {
			t.Errorf("stats %+v: want evictions and the SYNs counted half-open", st)
		}
	})

	t.Run("half-sent hellos", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}, MaxFlows: 500})
		for i := range 2000 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 40000)
			k := &conn{c: src, s: srv4, cseq: uint32(i) * 7919, sseq: 1}
			k.open(f, 1460)
			k.client(f, hello[:700], -1)
			k.ackClient(f)
		}
		f.tr.Advance(f.now.Add(time.Minute))
		st := f.tr.Stats()
		for _, h := range f.got {
			if h.Outcome == diagnose.StalledClientHello || h.Outcome == diagnose.StalledServerFlight {
				t.Fatalf("a half-sent hello looks like a stall: %+v", h)
			}
			if h.HelloBytes != len(hello) {
				t.Fatalf("hello size %d, want %d from its record header", h.HelloBytes, len(hello))
			}
		}
		if st.Evicted == 0 || st.Handshakes[diagnose.Timeout] == 0 || st.HelloUnparsed == 0 {
			t.Errorf("stats %+v: want evictions, timeouts, hellos left unparsed for want of buffers", st)
		}
	})

	t.Run("RST storm and stray segments", func(t *testing.T) {
		f := newFeeder(t, flow.Config{MaxFlows: 100})
		rng := mrand.New(mrand.NewPCG(3, 4))
		for i := range 20000 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), uint16(rng.Uint32()))
			fl := packet.RST
			if i%2 == 0 {
				fl = packet.ACK | packet.PSH
			}
			f.send(seg{src: src, dst: srv4, seq: rng.Uint32(), ack: rng.Uint32(), flags: fl, payload: []byte("GET / HTTP/1.1\r\n")}, time.Microsecond)
		}
		if st := f.tr.Stats(); st.Open != 0 || len(f.got) != 0 || st.Ignored != 20000 {
			t.Errorf("stats %+v, %d emitted: want every packet ignored", st, len(f.got))
		}
	})

	t.Run("not TLS on a watched port", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 1, sseq: 1}
		k.open(f, 1460)
		k.client(f, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), -1)
		if len(f.got) != 0 {
			t.Fatalf("got %+v before the connection ended: plaintext may still upgrade to TLS", f.got)
		}
		k.server(f, []byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		f.send(seg{src: k.s, dst: k.c, seq: k.sseq, ack: k.cseq, flags: packet.FIN | packet.ACK}, time.Millisecond)
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.NotTLS || !bytes.Contains([]byte(f.got[0].Detail), []byte("GET")) {
			t.Fatalf("got %+v, want not_tls naming the bytes", f.got)
		}
	})

	t.Run("alert", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 1, sseq: 1}
		k.open(f, 1460)
		k.client(f, hello[:1448], -1)
		k.client(f, hello[1448:], -1)
		k.server(f, []byte{21, 3, 3, 0, 2, 2, 40})
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.Alert || f.got[0].Detail != "server: handshake_failure" {
			t.Fatalf("got %+v, want an alert handshake_failure", f.got)
		}
	})

	t.Run("IP fragments", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 1, sseq: 1}
		k.open(f, 1460)
		// The hello's first fragment (TCP header inside) and a second one.
		f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq, flags: packet.ACK, payload: hello[:1000], moreFrags: true}, time.Millisecond)
		b := seg{src: k.c, dst: k.s, payload: hello[1000:1400], fragOffset: 1024}.raw()
		f.raw(b, time.Millisecond)
		f.tr.Flush(f.now)
		st := f.tr.Stats()
		if len(f.got) != 1 || f.got[0].Fragments != 1 || st.Fragments != 1 {
			t.Fatalf("handshakes %+v, stats %+v: want one fragment counted on the flow, one unclaimed", f.got, st)
		}
		if f.got[0].Start.After(f.got[0].End) {
			t.Errorf("start %v after end %v", f.got[0].Start, f.got[0].End)
		}
	})

	t.Run("connected, no hello", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := &conn{c: cli4, s: srv4, cseq: 1, sseq: 1}
		k.open(f, 1460)
		f.tr.Advance(f.now.Add(11 * time.Second))
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.NoClientHello {
			t.Fatalf("got %+v, want no_clienthello", f.got)
		}
	})
}
