package flow_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// FuzzTracker drives a small tracker with packet sequences made from the
// fuzzer's bytes: eight bytes per packet choose the connection, the
// direction, flags, sequence and acknowledgement (near the connection's
// own or anywhere), SACK, the payload (a hello's start, records, noise),
// the snap length, the time step (with jumps of hours, or back), plaintext
// before a hello, HelloRetryRequests, SSLv2 hellos and ICMP too-big quotes. Whatever comes,
// the tracker must not panic, must keep its table within MaxFlows, and
// must emit each handshake once.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x12, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x18, 1, 200, 0, 0, 0, 1})
	f.Add([]byte{1, 0x02, 0xff, 0xff, 0, 0, 0, 0, 1, 0x18, 2, 100, 3, 9, 1, 1, 0x81, 0x10, 3, 3, 0, 0, 1, 200, 1, 0x04, 0, 0, 0, 0, 0, 0})
	hello := pqHello(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxFlows = 4
		seen := map[string]int{}
		cfg := flow.Config{MaxFlows: maxFlows, HandshakeTimeout: 2 * time.Second, MaxBuffer: 512}
		if len(data) > 0 && data[0]&0x80 != 0 {
			cfg.Ports = []uint16{443}
		}
		cfg.Emit = func(h flow.Handshake) {
			k := h.Client.String() + h.Start.String()
			seen[k]++
			if seen[k] > 1 {
				t.Fatalf("handshake %s emitted twice", k)
			}
		}
		var obs *checker
		if len(data) > 0 && data[0]&0x20 != 0 {
			obs = &checker{t: t, open: map[int32]bool{}}
			cfg.Observer = obs
		}
		tr := flow.NewTracker(cfg)
		now := time.Unix(1e9, 0)
		var p packet.Packet
		var seqs [8][2]uint32
		for len(data) >= 8 {
			r := data[:8]
			data = data[8:]
			c := int(r[0] & 7)
			c6 := r[0]&0x40 != 0
			up := r[0]&0x08 == 0
			cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(c)}), 40000+uint16(c))
			srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, 10}), 443)
			if c6 {
				cli = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 15: byte(c)}), cli.Port())
				srv = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 1, 15: 10}), 443)
			}
			s := seg{src: cli, dst: srv, flags: packet.TCPFlags(r[1]), mss: uint16(r[2]) * 8, snap: -1, hop: 64 - r[7]&1}
			dirn := 0
			if !up {
				s.src, s.dst, dirn = srv, cli, 1
			}
			delta := uint32(binary.BigEndian.Uint16(r[2:4]))
			if r[6]&0x80 != 0 {
				seqs[c][dirn] += delta * 97 // far away: wrap, garbage
			}
			s.seq = seqs[c][dirn]
			s.ack = seqs[c][1-dirn] + uint32(r[6]&0x0f)*100
			if r[6]&0x10 != 0 {
				s.sack = []packet.SACKBlock{{Left: s.ack + delta, Right: s.ack + delta + uint32(r[5])*8}}
			}
			n := int(r[4]) * 8
			switch r[5] & 3 {
			case 0:
				s.payload = hello[min(int(r[3])*8, len(hello)):min(int(r[3])*8+n, len(hello))]
			case 1:
				s.payload = record(r[3]&3+20, n, r[4], r[5])
			case 2:
				// Plaintext before a hello (STARTTLS), a HelloRetryRequest,
				// an SSLv2-format hello, or zeros.
				switch r[3] & 3 {
				case 0:
					s.payload = []byte("220 mx.example.test ESMTP\r\n")
				case 1:
					s.payload = hrrRecord()
				case 2:
					s.payload = []byte{0x80, 0x2e, 1, 3, 1, 0, 6, 0, 0, 0, 16}
				default:
					s.payload = make([]byte, n)
				}
			}
			if r[7]&2 != 0 {
				s.snap = int(r[7]) / 4
			}
			if packet.TCPFlags(r[1])&packet.SYN != 0 {
				seqs[c][dirn]++
			}
			seqs[c][dirn] += uint32(len(s.payload))
			now = now.Add(time.Duration(r[7]>>2) * 50 * time.Millisecond)
			switch {
			case r[6]&0x60 == 0x60:
				now = now.Add(-time.Minute) // the clock goes back: another capture
			case r[6]&0x20 != 0 && r[6]&0x0f == 0x0f:
				now = now.Add(2 * time.Hour) // a gap: another capture
			}
			b := s.raw()
			if r[7]&0x80 != 0 && s.src.Addr().Is4() {
				b = tooBig(netip.AddrFrom4([4]byte{192, 0, 2, 1}), s, 576+int(r[6])*4)
			}
			if packet.Decode(packet.LinkRaw, b, &p) != nil {
				continue
			}
			tr.Packet(&p, now)
			if st := tr.Stats(); st.Open > maxFlows {
				t.Fatalf("%d flows open, bound %d", st.Open, maxFlows)
			}
		}
		tr.Flush(now)
		if st := tr.Stats(); st.Open != 0 {
			t.Fatalf("%d flows open after Flush", st.Open)
		}
		if obs != nil && len(obs.open) != 0 {
			t.Fatalf("%d connections never closed to the observer", len(obs.open))
		}
	})
}

// checker is an Observer that checks what it is handed: calls only for a
// connection between its Open and its Close, at most MaxFlows open, and
// every segment with payload placed in its stream.
type checker struct {
	t    *testing.T
	next int32
	open map[int32]bool
}

func (c *checker) Open(*flow.Conn) int32 {
	c.next++
	c.open[c.next] = true
	if len(c.open) > 4 {
		c.t.Fatalf("%d connections open to the observer", len(c.open))
	}
	return c.next
}

func (c *checker) known(h int32, what string) {
	if !c.open[h] {
		c.t.Fatalf("%s for connection %d, not open", what, h)
	}
}

func (c *checker) Segment(h int32, s *flow.Segment) {
	c.known(h, "segment")
	if s.Packet.PayloadLen > 0 && !s.SeqOK {
		c.t.Fatalf("segment with %d bytes of payload not placed in its stream", s.Packet.PayloadLen)
	}
	if s.NSACK > len(s.SACK) || s.Side != flow.ClientToServer && s.Side != flow.ServerToClient {
		c.t.Fatalf("segment %+v", s)
	}
}

func (c *checker) TooBig(h int32, _ int, _ *packet.Packet) { c.known(h, "ICMP too-big") }

func (c *checker) Handshake(h int32, _ *flow.Handshake) { c.known(h, "handshake") }

func (c *checker) Close(h int32) {
	c.known(h, "close")
	delete(c.open, h)
}
