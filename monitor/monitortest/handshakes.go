package monitortest

import (
	"crypto/rand"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/tlswire"
)

// Handshakes crafts whole TLS connections as a capture on the server shows
// them: the three-way handshake with MSS 1460, a curl-sized ClientHello,
// and a server flight of three segments (1460, 1460 and 554 bytes of
// payload). A completed one ends with the client's Finished; a stalled one
// is a path that loses the server's packets over 1300 bytes: the flight's
// tail arrives (the client acknowledges it selectively), the full-size
// segments and three retransmissions never do, and the client gives up
// with a reset. Connections may overlap: WriteTo puts every packet in
// time order.
type Handshakes struct {
	Server [4]byte
	hello  []byte
	flight []byte
	pkts   []stamped
}

type stamped struct {
	ts  time.Time
	pkt []byte
}

// NewHandshakes returns a crafter of connections to server:443.
func NewHandshakes(t testing.TB, server [4]byte) *Handshakes {
	t.Helper()
	h, err := tlswire.Build(tlswire.HelloSpec{ServerName: "example.test", Size: 517}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// ServerHello, ChangeCipherSpec, then encrypted records: 3474 bytes in all.
	flight := record(22, 90, 2)
	flight = append(flight, record(20, 1, 1)...)
	flight = append(flight, record(23, 3474-len(flight)-5)...)
	return &Handshakes{Server: server, hello: h.Record, flight: flight}
}

func record(typ byte, n int, first ...byte) []byte {
	b := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	body := make([]byte, n)
	copy(body, first)
	return append(b, body...)
}

// WriteTo writes every crafted packet to w in time order.
func (h *Handshakes) WriteTo(t testing.TB, w *PcapWriter) {
	slices.SortStableFunc(h.pkts, func(a, b stamped) int { return a.ts.Compare(b.ts) })
	for _, p := range h.pkts {
		w.Raw(t, p.ts, p.pkt)
	}
	h.pkts = nil
}

// conn is one connection's endpoints, next sequence numbers and clock.
type conn struct {
	h          *Handshakes
	client     [4]byte
	port       uint16
	cseq, sseq uint32
	ts         time.Time
}

func (k *conn) up(after time.Duration, flags byte, opts, payload []byte) {
	k.ts = k.ts.Add(after)
	k.h.pkts = append(k.h.pkts, stamped{k.ts, TCPPacket(k.client, k.h.Server, k.port, 443, k.cseq, k.sseq, flags, opts, payload)})
	k.cseq += uint32(len(payload))
}

func (k *conn) down(after time.Duration, flags byte, seq uint32, opts, payload []byte) {
	k.ts = k.ts.Add(after)
	k.h.pkts = append(k.h.pkts, stamped{k.ts, TCPPacket(k.h.Server, k.client, 443, k.port, seq, k.cseq, flags, opts, payload)})
}

var mss1460 = []byte{2, 4, 0x05, 0xb4}

// open crafts the three-way handshake and the ClientHello with its
// acknowledgement, and returns the connection at the server's flight.
func (h *Handshakes) open(ts time.Time, client [4]byte, port uint16) *conn {
	iss := binary.BigEndian.Uint32(client[:]) ^ uint32(port)<<16
	k := &conn{h: h, client: client, port: port, cseq: iss, sseq: ^iss, ts: ts}
	h.pkts = append(h.pkts, stamped{ts, TCPPacket(client, h.Server, port, 443, k.cseq, 0, FlagSYN, mss1460, nil)})
	k.cseq++
	k.down(20*time.Millisecond, FlagSYN|FlagACK, k.sseq, mss1460, nil)
	k.sseq++
	k.up(20*time.Millisecond, FlagACK, nil, nil)
	k.up(time.Millisecond, FlagACK|FlagPSH, nil, h.hello)
	k.down(20*time.Millisecond, FlagACK, k.sseq, nil, nil)
	return k
}

func (k *conn) flight() {
	for off := 0; off < len(k.h.flight); off += 1460 {
		k.down(time.Millisecond, FlagACK, k.sseq+uint32(off), nil, k.h.flight[off:min(off+1460, len(k.h.flight))])
	}
}

// Completed crafts a handshake that completes, starting at ts.
func (h *Handshakes) Completed(ts time.Time, client [4]byte, port uint16) {
	k := h.open(ts, client, port)
	k.flight()
	k.sseq += uint32(len(h.flight))
	k.up(20*time.Millisecond, FlagACK, nil, nil)
	k.up(time.Millisecond, FlagACK|FlagPSH, nil, append(record(20, 1, 1), record(23, 53)...))
	k.down(20*time.Millisecond, FlagACK, k.sseq, nil, nil)
}

// StalledFlight crafts a handshake whose server flight stalls on a path
// that loses packets over 1300 bytes, starting at ts; it ends about 8 s
// later with the client's reset.
func (h *Handshakes) StalledFlight(ts time.Time, client [4]byte, port uint16) {
	k := h.open(ts, client, port)
	k.flight()
	// The tail arrived: a duplicate acknowledgement with its SACK block.
	sack := []byte{1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(sack[4:], k.sseq+2920)
	binary.BigEndian.PutUint32(sack[8:], k.sseq+uint32(len(h.flight)))
	k.up(20*time.Millisecond, FlagACK, sack, nil)
	for wait := time.Second; wait <= 4*time.Second; wait *= 2 {
		k.down(wait, FlagACK, k.sseq, nil, h.flight[:1460])
		k.up(20*time.Millisecond, FlagACK, sack, nil)
	}
	k.up(time.Second, FlagRST|FlagACK, nil, nil)
}
