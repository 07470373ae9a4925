package packet

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestChecksum: headers checksummed here verify as gopacket computes them,
// for IPv4 (header and TCP) and IPv6 (TCP), odd payload lengths included,
// and a header summed with its own checksum gives 0.
func TestChecksum(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{{"192.0.2.1", "198.51.100.2"}, {"2001:db8::1", "2001:db8:1::2"}} {
		for _, payload := range [][]byte{nil, []byte("x"), []byte("odd length payload!")} {
			src, dst := netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst)
			tcp := &layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 7, Ack: 9, ACK: true, PSH: true, Window: 512}
			var ip gopacket.NetworkLayer
			if src.Is4() {
				ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
			} else {
				ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
			}
			if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			buf := gopacket.NewSerializeBuffer()
			opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
			if err := gopacket.SerializeLayers(buf, opts, ip.(gopacket.SerializableLayer), tcp, gopacket.Payload(payload)); err != nil {
				t.Fatal(err)
			}
			pkt := buf.Bytes()
			hdr := 40
			if src.Is4() {
				hdr = 20
				if got := Checksum(Sum(0, pkt[:20])); got != 0 {
					t.Errorf("%s: IPv4 header sums to %#04x with its checksum, want 0", tc.src, got)
				}
				want := binary.BigEndian.Uint16(pkt[10:12])
				h := append([]byte(nil), pkt[:20]...)
				h[10], h[11] = 0, 0
				if got := Checksum(Sum(0, h)); got != want {
					t.Errorf("%s: IPv4 header checksum %#04x, gopacket %#04x", tc.src, got, want)
				}
			}
			seg := append([]byte(nil), pkt[hdr:]...)
			want := binary.BigEndian.Uint16(seg[16:18])
			seg[16], seg[17] = 0, 0
			if got := Checksum(Sum(PseudoHeaderSum(src, dst, 6, len(seg)), seg)); got != want {
				t.Errorf("%s, %d-byte payload: TCP checksum %#04x, gopacket %#04x", tc.src, len(payload), got, want)
			}
		}
	}
}
