package analyze

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/packet"
)

// FuzzMatchArrivals fuzzes the two-capture segment matcher: whatever the
// sent packets and arrivals, it must not panic, and a packet it calls
// delivered must have an arrival that overlaps its bytes and came after it
// was sent (within the tolerance).
func FuzzMatchArrivals(f *testing.F) {
	f.Add([]byte{0, 0, 5, 0, 1, 5, 10, 0, 2, 0, 3, 1, 0, 5, 5, 9}, int64(0), int64(2))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}, int64(-3), int64(1))
	f.Fuzz(func(t *testing.T, data []byte, conv, tol int64) {
		if tol < 0 {
			tol = -tol
		}
		tol %= 1000
		conv %= 1000
		var ws []wirePkt
		var arr []seg
		for i := 0; i+4 <= len(data); i += 4 {
			start := uint32(data[i]) * 100
			s := span{Start: start, End: start + 1 + uint32(data[i+1])*10}
			tm := int64(data[i+2])
			if data[i+3]&1 == 0 {
				ws = append(ws, wirePkt{span: s, t: tm, ipLen: int(s.Len()) + 52})
			} else {
				arr = append(arr, seg{span: s, t: tm})
			}
		}
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].t < ws[j].t })
		matchArrivals(ws, arr, conv, tol)
		for _, w := range ws {
			if w.status != delivered {
				continue
			}
			ok := false
			for _, a := range arr {
				if a.Overlaps(w.span) && a.t+conv+tol >= w.t && w.arrival == a.t+conv {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("%+v delivered without an arrival that explains it (arrivals %+v)", w, arr)
			}
		}
	})
}

// FuzzFlow fuzzes one flow's packets through the flow table, the
// single-capture judgement, the classifier and the summary: no panic, and
// every wire packet lies inside the recorded stream.
func FuzzFlow(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 1, 5, 0xdc, 1, 1})
	f.Add([]byte{18, 0, 0, 1, 0, 0, 0, 0, 0, 0, 16, 1, 0, 0, 0, 0, 0, 0, 1, 16, 5, 0, 0, 3, 16, 0, 0, 5, 0xa8, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := netip.MustParseAddrPort("198.51.100.2:40000")
		s := netip.MustParseAddrPort("203.0.113.10:443")
		lim := Limits{MaxSegments: 16, MaxStream: 1 << 16}.withDefaults()
		var recs []record
		tb := newTable(lim, newTracked(lim), func(fs *flowState) bool {
			r := classify(fs, [2][]wirePkt{fs.judgeSingle(up, nil), fs.judgeSingle(down, nil)})
			recs = append(recs, r)
			return false
		})
		var p packet.Packet
		var tm int64
		payload := make([]byte, 2048)
		copy(payload, []byte{22, 3, 1, 2, 0})
		for i := 0; i+11 <= len(data); i += 11 {
			b := data[i : i+11]
			p = packet.Packet{Family: 4, Proto: packet.ProtoTCP, Transport: true, HopLimit: b[0]}
			src, dst := c, s
			if b[0]&1 == 1 {
				src, dst = s, c
			}
			p.Src, p.Dst = src.Addr(), dst.Addr()
			p.TCP = packet.TCP{SrcPort: src.Port(), DstPort: dst.Port(), Flags: packet.TCPFlags(b[1]),
				Seq: binary.BigEndian.Uint32(b[2:]), Ack: binary.BigEndian.Uint32(b[6:]), WScale: -1}
			if p.TCP.Flags.Has(packet.SYN) {
				p.TCP.MSS = uint16(b[10]) * 8
			}
			if b[10]&0x80 != 0 {
				p.TCP.NSACK = 1
				p.TCP.SACK[0] = packet.SACKBlock{Left: p.TCP.Ack + uint32(b[10]&0x7f)*100, Right: p.TCP.Ack + uint32(b[10]&0x7f)*100 + 1448}
			}
			n := int(b[10]) * 8
			p.PayloadLen = n
			p.Payload = payload[:n]
			p.IPLen = 52 + n
			tm += int64(b[0]) * 1000
			tb.packet(&p, time.Unix(0, tm))
			if b[1]&0x40 != 0 { // an ICMP too-big quoting the flow
				q := packet.Packet{Family: 4, Proto: packet.ProtoICMP, Transport: true, Src: netip.MustParseAddr("192.0.2.1"), Dst: src.Addr()}
				q.ICMP = packet.ICMP{Type: 3, Code: 4, MTU: 1400, Quote: packet.Quote{Valid: true, Family: 4, Src: src.Addr(), Dst: dst.Addr(),
					Proto: packet.ProtoTCP, IPLen: 1500, Ports: true, SrcPort: src.Port(), DstPort: dst.Port()}}
				tb.packet(&q, time.Unix(0, tm))
			}
		}
		tb.end(time.Unix(0, tm))
		sum := newSummary()
		for i := range recs {
			r := &recs[i]
			for di := range 2 {
				if len(r.wire[di]) > maxChunks+maxEvents*64 {
					t.Fatalf("%d wire packets", len(r.wire[di]))
				}
				for _, w := range r.wire[di] {
					if w.End < w.Start || w.ipLen <= 0 {
						t.Fatalf("bad wire packet %+v", w)
					}
				}
			}
			sum.add(r)
		}
		res := sum.result(ModeSingle)
		_ = res.WriteSVG(discard{})
	})
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
