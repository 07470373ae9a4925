package craftpcap

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/tlswire"
)

// Conversations writes TLS connections as a capture on the server's side
// shows them, real and spoofed, for the monitor's replay tests. The
// connections may overlap in time: their packets are kept and written in
// time order by Write.
type Conversations struct {
	// Servers are the server's endpoints: a connection goes to the first
	// one of its client's family.
	Servers []netip.AddrPort
	pkts    []timed
	rng     *rand.Rand
	// small is curl's size of hello (517 bytes, one segment), big a
	// post-quantum one (1800 bytes, two segments); flight is the server's
	// first flight (ServerHello, ChangeCipherSpec and encrypted records,
	// 3474 bytes: three segments).
	small, big, flight []byte
}

type timed struct {
	ts time.Time
	s  Segment
}

// NewConversations makes connections to servers, with sequence numbers
// from a generator seeded with seed.
func NewConversations(t testing.TB, seed uint64, servers ...netip.AddrPort) *Conversations {
	t.Helper()
	c := &Conversations{Servers: servers, rng: rand.New(rand.NewPCG(seed, seed+1))}
	src := rand.NewChaCha8([32]byte{byte(seed)})
	for _, spec := range []struct {
		out    *[]byte
		size   int
		groups []tlswire.Group
	}{{&c.small, 517, nil}, {&c.big, 1800, []tlswire.Group{tlswire.GroupX25519MLKEM768, tlswire.GroupX25519}}} {
		h, err := tlswire.Build(tlswire.HelloSpec{ServerName: "example.test", Size: spec.size, Groups: spec.groups}, src)
		if err != nil {
			t.Fatal(err)
		}
		*spec.out = h.Record
	}
	c.flight = append(record(22, 90, 2), record(20, 1, 1)...)
	c.flight = append(c.flight, record(23, 3474-len(c.flight)-5)...)
	return c
}

// record returns a TLS record of type typ with an n-byte body that starts
// with first.
func record(typ byte, n int, first ...byte) []byte {
	b := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	body := make([]byte, n)
	copy(body, first)
	return append(b, body...)
}

// Hello returns the small ClientHello record (517 bytes) the
// conversations send.
func (c *Conversations) Hello() []byte { return c.small }

// Segment adds one packet at ts.
func (c *Conversations) Segment(ts time.Time, s Segment) { c.pkts = append(c.pkts, timed{ts, s}) }

// Write writes the packets of every connection so far to w in time
// order, and forgets them.
func (c *Conversations) Write(t testing.TB, w *Writer) {
	t.Helper()
	slices.SortStableFunc(c.pkts, func(a, b timed) int { return a.ts.Compare(b.ts) })
	for _, p := range c.pkts {
		w.Segment(t, p.ts, p.s)
	}
	c.pkts = c.pkts[:0]
}

// server is the server endpoint for a client at cl.
func (c *Conversations) server(cl netip.AddrPort) netip.AddrPort {
	for _, s := range c.Servers {
		if s.Addr().Is4() == cl.Addr().Is4() {
			return s
		}
	}
	panic("craftpcap: no server of the family of " + cl.String())
}

// mss is the segment size of a client's family (no TCP options).
func mss(a netip.AddrPort) int { return 1500 - headers(a) }

// headers is the length of the IP and TCP headers of a segment with no
// TCP options in a's family.
func headers(a netip.AddrPort) int {
	if a.Addr().Is4() {
		return 20 + 20
	}
	return 40 + 20
}

// open writes the three-way handshake and returns the ISNs plus one.
func (c *Conversations) open(ts time.Time, cl netip.AddrPort) (cseq, sseq uint32) {
	srv := c.server(cl)
	cseq, sseq = c.rng.Uint32(), c.rng.Uint32()
	m := uint16(mss(cl))
	c.Segment(ts, Segment{Src: cl, Dst: srv, Seq: cseq, Flags: FlagSYN, MSS: m})
	c.Segment(ts.Add(time.Millisecond), Segment{Src: srv, Dst: cl, Seq: sseq, Ack: cseq + 1, Flags: FlagSYN | FlagACK, MSS: m})
	c.Segment(ts.Add(20*time.Millisecond), Segment{Src: cl, Dst: srv, Seq: cseq + 1, Ack: sseq + 1, Flags: FlagACK})
	return cseq + 1, sseq + 1
}

// hello writes the three-way handshake and the small hello, and returns
// the sequence numbers at the server's flight.
func (c *Conversations) hello(ts time.Time, cl netip.AddrPort) (cseq, sseq uint32) {
	cseq, sseq = c.open(ts, cl)
	c.Segment(ts.Add(21*time.Millisecond), Segment{Src: cl, Dst: c.server(cl), Seq: cseq, Ack: sseq, Flags: FlagACK | FlagPSH, Payload: c.small})
	return cseq + uint32(len(c.small)), sseq
}

// flightSegments returns the server's flight to cl cut at cl's MSS.
func (c *Conversations) flightSegments(cl netip.AddrPort, cseq, sseq uint32) []Segment {
	var segs []Segment
	for off := 0; off < len(c.flight); off += mss(cl) {
		segs = append(segs, Segment{Src: c.server(cl), Dst: cl, Seq: sseq + uint32(off), Ack: cseq, Flags: FlagACK,
			Payload: c.flight[off:min(off+mss(cl), len(c.flight))]})
	}
	return segs
}

// Completed writes a handshake that completes, started at ts from cl: the
// small hello, the server's 3474-byte flight, the client's Finished.
func (c *Conversations) Completed(ts time.Time, cl netip.AddrPort) {
	srv := c.server(cl)
	cseq, sseq := c.hello(ts, cl)
	for _, s := range c.flightSegments(cl, cseq, sseq) {
		c.Segment(ts.Add(22*time.Millisecond), s)
	}
	sseq += uint32(len(c.flight))
	c.Segment(ts.Add(42*time.Millisecond), Segment{Src: cl, Dst: srv, Seq: cseq, Ack: sseq, Flags: FlagACK})
	c.Segment(ts.Add(43*time.Millisecond), Segment{Src: cl, Dst: srv, Seq: cseq, Ack: sseq, Flags: FlagACK | FlagPSH,
		Payload: append(record(20, 1, 1), record(23, 53)...)})
}

// StalledFlight writes a handshake, started at ts from cl, whose server
// flight stalls on a path that loses packets over mtu bytes towards the
// client and sends no ICMP back: the flight's segments that fit arrive and
// the client acknowledges them selectively (its cumulative acknowledgement
// stays before the first lost byte), the server retransmits the first lost
// segment after 1, 2 and 4 seconds, each lost again and answered with the
// same acknowledgement, and the client gives up with a reset a second
// later, about 8 s after ts. It panics if every segment fits in mtu.
func (c *Conversations) StalledFlight(ts time.Time, cl netip.AddrPort, mtu int) {
	srv := c.server(cl)
	cseq, sseq := c.hello(ts, cl)
	at := ts.Add(22 * time.Millisecond)
	ack, lost := sseq, -1
	var sack [][2]uint32
	segs := c.flightSegments(cl, cseq, sseq)
	for i, s := range segs {
		c.Segment(at, s)
		end := s.Seq + uint32(len(s.Payload))
		switch {
		case headers(cl)+len(s.Payload) > mtu:
			if lost < 0 {
				lost = i
			}
		case s.Seq == ack:
			ack = end
		case len(sack) > 0 && sack[len(sack)-1][1] == s.Seq:
			sack[len(sack)-1][1] = end
		default:
			sack = append(sack, [2]uint32{s.Seq, end})
		}
	}
	if lost < 0 {
		panic("craftpcap: every segment of the flight fits in the MTU")
	}
	dup := Segment{Src: cl, Dst: srv, Seq: cseq, Ack: ack, Flags: FlagACK, SACK: sack[:min(len(sack), 4)]}
	at = at.Add(20 * time.Millisecond)
	c.Segment(at, dup)
	for wait := time.Second; wait <= 4*time.Second; wait *= 2 {
		at = at.Add(wait)
		c.Segment(at, segs[lost])
		at = at.Add(20 * time.Millisecond)
		c.Segment(at, dup)
	}
	c.Segment(at.Add(time.Second), Segment{Src: cl, Dst: srv, Seq: cseq, Ack: ack, Flags: FlagRST | FlagACK})
}

// StalledUp writes a handshake that stalls upstream as behind a path-MTU
// black hole: the big hello's first segment never reaches the server,
// its tail does (the server acknowledges it selectively), the client's
// retransmissions of the head are lost too, and it gives up after five
// seconds (FIN).
func (c *Conversations) StalledUp(ts time.Time, cl netip.AddrPort) {
	srv := c.server(cl)
	cseq, sseq := c.open(ts, cl)
	head := uint32(mss(cl))
	end := cseq + uint32(len(c.big))
	c.Segment(ts.Add(21*time.Millisecond), Segment{Src: cl, Dst: srv, Seq: cseq + head, Ack: sseq, Flags: FlagACK | FlagPSH, Payload: c.big[head:]})
	sack := [][2]uint32{{cseq + head, end}}
	c.Segment(ts.Add(22*time.Millisecond), Segment{Src: srv, Dst: cl, Seq: sseq, Ack: cseq, Flags: FlagACK, SACK: sack})
	c.Segment(ts.Add(5*time.Second), Segment{Src: cl, Dst: srv, Seq: end, Ack: sseq, Flags: FlagACK | FlagFIN})
	c.Segment(ts.Add(5*time.Second+time.Millisecond), Segment{Src: srv, Dst: cl, Seq: sseq, Ack: cseq, Flags: FlagACK, SACK: [][2]uint32{{cseq + head, end + 1}}})
}

// SpoofedHello writes one segment carrying a whole ClientHello, with no
// connection before it, as an off-path sender forging cl writes it; rst
// adds the server's answer to a segment of no connection (a reset),
// otherwise the server (or a firewall before it) stays silent.
func (c *Conversations) SpoofedHello(ts time.Time, cl netip.AddrPort, rst bool) {
	srv := c.server(cl)
	seq, ack := c.rng.Uint32(), c.rng.Uint32()
	c.Segment(ts, Segment{Src: cl, Dst: srv, Seq: seq, Ack: ack, Flags: FlagACK | FlagPSH, Payload: c.small})
	if rst {
		c.Segment(ts.Add(time.Millisecond), Segment{Src: srv, Dst: cl, Seq: ack, Flags: FlagRST})
	}
}

// BlindStall writes what an off-path sender forging cl needs to look like
// a stalled hello: the big hello's head and its tail past a gap, each
// sent twice a second apart, no SYN, the server silent.
func (c *Conversations) BlindStall(ts time.Time, cl netip.AddrPort) {
	srv := c.server(cl)
	seq, ack := c.rng.Uint32(), c.rng.Uint32()
	head := c.big[:1000]
	tailAt := uint32(mss(cl))
	for i := range 2 {
		at := ts.Add(time.Duration(i) * time.Second)
		c.Segment(at, Segment{Src: cl, Dst: srv, Seq: seq, Ack: ack, Flags: FlagACK | FlagPSH, Payload: head})
		c.Segment(at.Add(time.Millisecond), Segment{Src: cl, Dst: srv, Seq: seq + tailAt, Ack: ack, Flags: FlagACK | FlagPSH, Payload: c.big[tailAt:]})
	}
}

// BlindReset writes a reset forged from cl (a client's endpoint the
// sender guessed, port included), with a sequence number it could not
// know: a real server ignores it (RFC 5961), as should whoever watches.
func (c *Conversations) BlindReset(ts time.Time, cl netip.AddrPort) {
	srv := c.server(cl)
	c.Segment(ts, Segment{Src: cl, Dst: srv, Seq: c.rng.Uint32(), Flags: FlagRST})
}
