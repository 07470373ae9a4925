package middlebox

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// packetMessage builds a netlink datagram as nfnetlink_queue sends one
// queued packet: header, nfgenmsg, then attributes (a hardware-address one
// first, as the kernel adds others).
func packetMessage(id uint32, payload []byte) []byte {
	var hdr [7]byte
	binary.BigEndian.PutUint32(hdr[0:4], id)
	binary.BigEndian.PutUint16(hdr[4:6], 0x0800)
	b := make([]byte, nlHeaderLen+sizeofNfgen)
	b = append(b, attr(9, make([]byte, 12))...)
	b = append(b, attr(attrPacketHdr, hdr[:])...)
	b = append(b, attr(attrPayload, payload)...)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], msgPacket)
	return b
}

func TestPacketMessages(t *testing.T) {
	c, s := ends(4)
	pkt := tcpPacket(c, s, 1, 2, flagACK, []byte{0x16, 3, 1, 0, 1, 1})
	two := append(packetMessage(7, pkt), packetMessage(8, pkt[:21])...)
	ms := splitMessages(two)
	if len(ms) != 2 {
		t.Fatalf("%d messages, want 2", len(ms))
	}
	for i, want := range []struct {
		id  uint32
		len int
	}{{7, len(pkt)}, {8, 21}} {
		p, ok := parsePacket(ms[i].data)
		if !ok || p.id != want.id || len(p.payload) != want.len || ms[i].typ != msgPacket {
			t.Errorf("message %d: %+v %v, want id %d with %d bytes", i, p, ok, want.id, want.len)
		}
	}
	// Cut or corrupted datagrams are read as far as they hold, never past.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := append([]byte(nil), two[:rng.IntN(len(two)+1)]...)
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		}
		for _, m := range splitMessages(b) {
			parsePacket(m.data)
		}
	}
}
