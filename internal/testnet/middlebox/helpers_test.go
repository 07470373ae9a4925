package middlebox

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/packet"
)

var (
	client4 = netip.MustParseAddrPort("198.51.100.2:40000")
	server4 = netip.MustParseAddrPort("203.0.113.10:443")
	client6 = netip.MustParseAddrPort("[2001:db8:100::2]:40000")
	server6 = netip.MustParseAddrPort("[2001:db8:300::10]:443")
)

func ends(fam int) (client, server netip.AddrPort) {
	if fam == 6 {
		return client6, server6
	}
	return client4, server4
}

// tcpPacket builds an IP packet of the family of src carrying one TCP
// segment with a timestamp option (as Linux sends), checksums filled in.
func tcpPacket(src, dst netip.AddrPort, seq, ack uint32, flags uint8, payload []byte) []byte {
	tcp := make([]byte, 32, 32+len(payload))
	binary.BigEndian.PutUint16(tcp[0:2], src.Port())
	binary.BigEndian.PutUint16(tcp[2:4], dst.Port())
	binary.BigEndian.PutUint32(tcp[4:8], seq)
	binary.BigEndian.PutUint32(tcp[8:12], ack)
	tcp[12] = 8 << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:16], 502)
	copy(tcp[20:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	tcp = append(tcp, payload...)
	sum := packet.PseudoHeaderSum(src.Addr(), dst.Addr(), 6, len(tcp))
	binary.BigEndian.PutUint16(tcp[16:18], packet.Checksum(packet.Sum(sum, tcp)))
	if src.Addr().Is4() {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:4], uint16(20+len(tcp)))
		ip[8], ip[9] = 63, 6
		s, d := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:12], packet.Checksum(packet.Sum(0, ip)))
		return append(ip, tcp...)
	}
	ip := make([]byte, 40)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(tcp)))
	ip[6], ip[7] = 6, 63
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	return append(ip, tcp...)
}

// helloSpec describes a crafted ClientHello.
type helloSpec struct {
	shares  []uint16 // key_share entries (X25519MLKEM768 gets 1216 bytes, others 32)
	groups  []uint16 // supported_groups; shares when nil
	sigalgs []uint16 // signature_algorithms; a classical list when nil
	// length is the handshake length field wanted (padding makes it up);
	// 0 leaves the hello at its natural length.
	length int
}

func vec16(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func ext(typ uint16, body []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, typ), vec16(body)...)
}

func u16s(v []uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// craft returns the ClientHello handshake message (header included).
func craft(t testing.TB, s helloSpec) []byte {
	t.Helper()
	if s.groups == nil {
		s.groups = s.shares
	}
	if s.sigalgs == nil {
		s.sigalgs = []uint16{0x0403, 0x0804, 0x0401}
	}
	var shares []byte
	for _, g := range s.shares {
		n := 32
		if g == GroupX25519MLKEM768 {
			n = 1216
		}
		shares = append(binary.BigEndian.AppendUint16(shares, g), vec16(bytes.Repeat([]byte{0x42}, n))...)
	}
	var exts []byte
	exts = append(exts, ext(43, []byte{2, 3, 4})...)
	exts = append(exts, ext(10, vec16(u16s(s.groups)))...)
	exts = append(exts, ext(extSignatureAlgorithms, vec16(u16s(s.sigalgs)))...)
	exts = append(exts, ext(extKeyShare, vec16(shares))...)
	body := []byte{3, 3}
	body = append(body, bytes.Repeat([]byte{7}, 32)...)
	body = append(body, 0)                                // session id
	body = append(body, vec16(u16s([]uint16{0x1301}))...) // suites
	body = append(body, 1, 0)                             // compression
	natural := len(body) + 2 + len(exts)
	if s.length > 0 {
		pad := s.length - natural - 4
		if pad < 0 {
			t.Fatalf("hello of length %d: natural length %d", s.length, natural)
		}
		exts = append(exts, ext(21, make([]byte, pad))...)
	}
	body = append(body, vec16(exts)...)
	msg := []byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

// records wraps msg in handshake records of at most max bytes each.
func records(msg []byte, max int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(max, len(msg))
		out = append(out, 0x16, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// recordConn records what a client writes and fails its reads.
type recordConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordConn) Write(b []byte) (int, error) { return c.buf.Write(b) }
func (c *recordConn) Read([]byte) (int, error)    { return 0, errors.New("no server") }
func (c *recordConn) Close() error                { return nil }
func (c *recordConn) SetDeadline(time.Time) error { return nil }

// goHello returns the ClientHello record(s) crypto/tls writes with the
// given key-exchange preferences (nil: Go's defaults).
func goHello(t testing.TB, curves []tls.CurveID) []byte {
	t.Helper()
	c := &recordConn{}
	cfg := &tls.Config{ServerName: "server.mtuscope.test", CurvePreferences: curves}
	_ = tls.Client(c, cfg).HandshakeContext(context.Background())
	if c.buf.Len() == 0 {
		t.Fatal("crypto/tls wrote nothing")
	}
	return c.buf.Bytes()
}

// feed sends the stream to d in segments of the given sizes (the rest in a
// last one), from seq 1000, and returns the decisions.
func feed(d *Device, fam int, stream []byte, sizes ...int) []Decision {
	c, s := ends(fam)
	var out []Decision
	seq := uint32(1000)
	for i := 0; len(stream) > 0; i++ {
		n := len(stream)
		if i < len(sizes) && sizes[i] < n {
			n = sizes[i]
		}
		out = append(out, d.Decide(tcpPacket(c, s, seq, 5000, flagACK|0x08, stream[:n])))
		seq += uint32(n)
		stream = stream[n:]
	}
	return out
}

func actions(ds []Decision) []Action {
	var out []Action
	for _, d := range ds {
		out = append(out, d.Action)
	}
	return out
}
