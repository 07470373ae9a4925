package analyze

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/findingtest"
)

// Loss inferred from one capture: each capture below is healthy, or shows
// nothing lost, and each was read as a loss (and a false size verdict)
// before the rules of judgeSingle and holes: bytes the receiver
// acknowledged are not lost, reordered segments are not lost, packets in
// flight when the capture ends are not lost, and a lost packet's size is
// the one the capture shows, not one cut from the MSS.

// conv writes one TCP conversation into a capture taken at one end: the
// far end's packets carry a hop limit lowered by two routers.
type conv struct {
	b          *pcapBuilder
	c, s       netip.AddrPort
	cisn, sisn uint32
	atServer   bool
}

func newConv(b *pcapBuilder, atServer bool) *conv {
	return &conv{b: b, c: testClient, s: testServer, cisn: 1000, sisn: 5000, atServer: atServer}
}

func (v *conv) ttl(fromClient bool) uint8 {
	if fromClient == v.atServer {
		return 62
	}
	return 64
}

// open writes the three-way handshake with both MSS 1460.
func (v *conv) open() {
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn, syn: true, mss: 1460, ttl: v.ttl(true)})
	v.b.add(tcpSeg{src: v.s, dst: v.c, seq: v.sisn, ack: v.cisn + 1, syn: true, ackF: true, mss: 1460, ttl: v.ttl(false), after: 10 * time.Millisecond})
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn + 1, ack: v.sisn + 1, ackF: true, ttl: v.ttl(true), after: 10 * time.Microsecond})
}

// up writes client bytes at stream offset off; down server bytes.
func (v *conv) up(off int, data []byte, ack int, after time.Duration) {
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn + 1 + uint32(off), ack: v.sisn + 1 + uint32(ack), ackF: true, data: data, ttl: v.ttl(true), after: after})
}

func (v *conv) down(off int, data []byte, ack int, after time.Duration) {
	v.b.add(tcpSeg{src: v.s, dst: v.c, seq: v.sisn + 1 + uint32(off), ack: v.cisn + 1 + uint32(ack), ackF: true, data: data, ttl: v.ttl(false), after: after})
}

// ackDown writes the client's acknowledgement of the server's bytes up to
// ack, with SACK blocks (offsets).
func (v *conv) ackDown(cseq, ack int, sack [][2]int, after time.Duration) {
	var bl [][2]uint32
	for _, s := range sack {
		bl = append(bl, [2]uint32{v.sisn + 1 + uint32(s[0]), v.sisn + 1 + uint32(s[1])})
	}
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn + 1 + uint32(cseq), ack: v.sisn + 1 + uint32(ack), ackF: true, sack: bl, ttl: v.ttl(true), after: after})
}

func (v *conv) ackUp(sseq, ack int, after time.Duration) {
	v.b.add(tcpSeg{src: v.s, dst: v.c, seq: v.sisn + 1 + uint32(sseq), ack: v.cisn + 1 + uint32(ack), ackF: true, ttl: v.ttl(false), after: after})
}

func (v *conv) fins(cseq, sseq int, after time.Duration) {
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn + 1 + uint32(cseq), ack: v.sisn + 1 + uint32(sseq), ackF: true, fin: true, ttl: v.ttl(true), after: after})
	v.b.add(tcpSeg{src: v.s, dst: v.c, seq: v.sisn + 1 + uint32(sseq), ack: v.cisn + 2 + uint32(cseq), ackF: true, fin: true, ttl: v.ttl(false), after: time.Millisecond})
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn + 2 + uint32(cseq), ack: v.sisn + 2 + uint32(sseq), ackF: true, ttl: v.ttl(true), after: time.Millisecond})
}

// serverRecord is the start of a TLS handshake record from the server, n
// bytes in all.
func serverRecord(n int) []byte {
	r := make([]byte, n)
	r[0], r[1], r[2], r[3], r[4] = 22, 3, 3, byte((n-5)>>8), byte(n-5)
	r[5] = 2
	return r
}

// flight is a server flight of n bytes, cut into segments of seg bytes.
func flightSegs(n, seg int) [][2]int {
	var out [][2]int
	for off := 0; off < n; off += seg {
		out = append(out, [2]int{off, min(off+seg, n)})
	}
	return out
}

func checkHealthy(t *testing.T, res *Result) {
	t.Helper()
	if res.Verdict != diagnose.VerdictOK {
		t.Errorf("verdict %s %s (path MTU %d, %+v), want ok; findings %+v", res.Verdict, res.Direction, res.PathMTU, res.PathMTURange, res.Findings)
	}
	if len(res.Lost) != 0 {
		t.Errorf("lost packets in a capture where nothing was lost: %+v", res.Lost)
	}
	for _, f := range res.Findings {
		for _, p := range findingtest.Problems(f) {
			t.Error(p)
		}
		if f.Code == diagnose.CodePMTUDWorks {
			t.Errorf("finding %s without any ICMP: %s", f.Code, f.Detail)
		}
	}
}

// TestCaptureDropIsNoLoss: a web client's capture misses two of the
// server's segments (tcpdump dropped them), which the client acknowledged.
// The server sends 1400-byte packets (its route learned that size long
// ago); cut from the MSS, the hole became a lost 1500-byte packet and a
// black hole.
func TestCaptureDropIsNoLoss(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, false)
	v.open()
	v.up(0, helloRecord(517), 0, time.Millisecond)
	v.ackUp(0, 517, 10*time.Millisecond)
	fl := serverRecord(4344)
	for i, s := range flightSegs(len(fl), 1348) {
		if i == 1 || i == 2 {
			continue // not in the capture
		}
		v.down(s[0], fl[s[0]:s[1]], 517, 20*time.Microsecond)
	}
	v.ackDown(517, 4344, nil, 100*time.Microsecond)
	v.up(517, []byte{20, 3, 3, 0, 1, 1}, 4344, time.Millisecond)
	v.ackUp(4344, 523, 10*time.Millisecond)
	v.fins(523, 4344, time.Second)
	res, err := File(b.file("web-client.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkHealthy(t, res)
}

// TestStartTLSCaptureDropIsNoLoss: the server's own capture of an SMTP
// STARTTLS session misses two of its own segments (a capture drop: a
// sender's stream has no holes); the client acknowledged them.
func TestStartTLSCaptureDropIsNoLoss(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, true)
	v.s = netip.AddrPortFrom(testServer.Addr(), 25)
	v.open()
	banner, ehlo, caps, starttls, ready := "220 mail.example.test ESMTP\r\n", "EHLO client\r\n", "250-mail\r\n250 STARTTLS\r\n", "STARTTLS\r\n", "220 go ahead\r\n"
	sOff, cOff := 0, 0
	v.down(sOff, []byte(banner), cOff, time.Millisecond)
	sOff += len(banner)
	v.up(cOff, []byte(ehlo), sOff, 10*time.Millisecond)
	cOff += len(ehlo)
	v.down(sOff, []byte(caps), cOff, 100*time.Microsecond)
	sOff += len(caps)
	v.up(cOff, []byte(starttls), sOff, 10*time.Millisecond)
	cOff += len(starttls)
	v.down(sOff, []byte(ready), cOff, 100*time.Microsecond)
	sOff += len(ready)
	v.up(cOff, helloRecord(517), sOff, 10*time.Millisecond)
	cOff += 517
	fl := serverRecord(4344)
	for i, s := range flightSegs(len(fl), 1348) {
		if i == 1 || i == 2 {
			continue // tcpdump missed them
		}
		v.down(sOff+s[0], fl[s[0]:s[1]], cOff, 20*time.Microsecond)
	}
	v.ackDown(cOff, sOff+4344, nil, 10*time.Millisecond)
	v.up(cOff, []byte{20, 3, 3, 0, 1, 1}, sOff+4344, time.Millisecond)
	cOff += 6
	v.ackUp(sOff+4344, cOff, 100*time.Microsecond)
	v.fins(cOff, sOff+4344, time.Second)
	res, err := File(b.file("smtp-server.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkHealthy(t, res)
}

// TestReorderingIsNoLoss: the client's capture sees the server's third
// small segment before the first two (reordered on the way, 50 µs late,
// sooner than the server could have heard of a hole). The hole, cut as one
// 102-byte packet "recovered" by the 77-byte ones, made pmtu_reduced and
// "the kernel learned a path MTU of 77".
func TestReorderingIsNoLoss(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, false)
	v.open()
	v.up(0, helloRecord(517), 0, time.Millisecond)
	v.ackUp(0, 517, 10*time.Millisecond)
	fl := serverRecord(250)
	v.down(50, fl[50:250], 517, time.Millisecond)
	v.down(0, fl[0:25], 517, 50*time.Microsecond)
	v.down(25, fl[25:50], 517, 10*time.Microsecond)
	v.ackDown(517, 250, nil, 50*time.Microsecond)
	v.up(517, []byte{20, 3, 3, 0, 1, 1}, 250, time.Millisecond)
	v.ackUp(250, 523, 10*time.Millisecond)
	v.fins(523, 250, time.Second)
	res, err := File(b.file("reorder-client.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkHealthy(t, res)
	if res.Verdict == diagnose.VerdictPMTUReduced {
		t.Errorf("pmtu_reduced without any ICMP: %+v", res.Findings)
	}
}

// TestInFlightAtTheEndIsNoLoss: the server's capture ends 3 ms after its
// flight, with an early retransmission of its head still unanswered: the
// acknowledgements may be on their way. Nothing here is lost; it was a
// black hole.
func TestInFlightAtTheEndIsNoLoss(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, true)
	v.open()
	v.up(0, helloRecord(517), 0, time.Millisecond)
	v.ackUp(0, 517, 100*time.Microsecond)
	fl := serverRecord(3314)
	v.down(0, fl, 517, time.Millisecond) // one super-segment (TSO)
	v.down(0, fl[:1448], 517, 3*time.Millisecond)
	path := b.file("end-server.pcap")
	res, err := File(path, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	agreeWithWatch(t, "end-server.pcap", path, res)
	if res.Verdict == diagnose.VerdictBlackhole || res.Verdict == diagnose.VerdictTLSFailed || len(res.Lost) != 0 {
		t.Errorf("verdict %s with %d lost packets (%+v) from a capture that ends while the flight is in flight", res.Verdict, len(res.Lost), res.Lost)
	}
	// The handshake's outcome says the same: cut by the capture's end, not
	// a stall (the retransmission may have been answered after the end).
	if len(res.Handshakes) != 1 || res.Handshakes[0].Outcome != diagnose.Timeout || !res.Handshakes[0].CaptureEnded {
		t.Errorf("handshakes %+v, want one timeout cut by the capture's end", res.Handshakes)
	}
}

// TestHoleSizesAreObserved: the client's capture of a flight of
// 1400-byte packets (the server learned that path MTU long ago) misses
// two of them; the server resends them 200 ms later and they arrive. They
// were lost, as 1400-byte packets: the capture shows the resent ones.
// Cut from the MSS they became a 1500-byte packet "recovered smaller",
// pmtu_reduced and "the kernel learned a path MTU of 1400".
func TestHoleSizesAreObserved(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, false)
	v.open()
	v.up(0, helloRecord(517), 0, time.Millisecond)
	v.ackUp(0, 517, 10*time.Millisecond)
	fl := serverRecord(4344)
	segs := flightSegs(len(fl), 1348)
	v.down(segs[0][0], fl[segs[0][0]:segs[0][1]], 517, time.Millisecond)
	v.down(segs[3][0], fl[segs[3][0]:segs[3][1]], 517, 40*time.Microsecond)
	v.ackDown(517, 1348, [][2]int{{4044, 4344}}, 50*time.Microsecond)
	for _, i := range []int{1, 2} {
		v.down(segs[i][0], fl[segs[i][0]:segs[i][1]], 517, 200*time.Millisecond)
	}
	v.ackDown(517, 4344, nil, 50*time.Microsecond)
	v.up(517, []byte{20, 3, 3, 0, 1, 1}, 4344, time.Millisecond)
	v.ackUp(4344, 523, 10*time.Millisecond)
	v.fins(523, 4344, time.Second)
	res, err := File(b.file("resent-client.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != diagnose.VerdictOK {
		t.Errorf("verdict %s (path MTU %d), want ok: two packets lost at the size that gets through; findings %+v", res.Verdict, res.PathMTU, res.Findings)
	}
	if len(res.Lost) != 2 {
		t.Fatalf("lost %+v, want the two 1400-byte packets", res.Lost)
	}
	for _, l := range res.Lost {
		if l.IPSize != 1400 || l.RecoveredSmaller || l.How != "hole" {
			t.Errorf("lost %+v, want a 1400-byte hole not recovered smaller", l)
		}
	}
	for _, f := range res.Findings {
		if strings.Contains(f.Detail, "kernel learned") {
			t.Errorf("finding %s: %s", f.Code, f.Detail)
		}
	}
}

// TestUnfilledHoleIsLoss: the server's capture of the S7 story: the
// hello's full-size head never arrives, its tail does, and the capture
// ends 100 ms later (the client's retransmissions are lost too). The
// client sends in order, so the head was sent before the tail and not
// merely reordered: lost, at the MSS's size. Ending within a round trip
// of the tail, the same capture shows nothing.
func TestUnfilledHoleIsLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  time.Duration
		want diagnose.Verdict
	}{
		{"capture goes on", 100 * time.Millisecond, diagnose.VerdictBlackhole},
		{"capture ends at once", 2 * time.Microsecond, diagnose.VerdictInconclusive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newPcap(t)
			// A healthy connection: 1400-byte packets get through both ways.
			w := newConv(b, true)
			w.c, w.cisn, w.sisn = netip.AddrPortFrom(testClient.Addr(), 40002), 7000, 9000
			w.open()
			w.up(0, helloRecord(1348), 0, time.Microsecond)
			w.ackUp(0, 1348, time.Microsecond)
			fl := serverRecord(1348)
			w.down(0, fl, 1348, time.Microsecond)
			w.ackDown(1348, 1348, nil, time.Millisecond)
			w.up(1348, []byte{20, 3, 3, 0, 1, 1}, 1348, time.Microsecond)
			w.ackUp(1348, 1354, time.Microsecond)
			// The stalled one.
			v := newConv(b, true)
			v.open()
			hello := helloRecord(1507)
			v.up(1448, hello[1448:], 0, time.Millisecond)
			v.b.add(tcpSeg{src: v.s, dst: v.c, seq: v.sisn + 1, ack: v.cisn + 1, ackF: true,
				sack: [][2]uint32{{v.cisn + 1 + 1448, v.cisn + 1 + 1507}}, after: time.Microsecond})
			w.fins(1354, 1348, tc.end)
			res, err := File(b.file("s7-server.pcap"), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			got := res.Verdict
			if got != tc.want && !(tc.want == diagnose.VerdictInconclusive && !got.Problem()) {
				t.Errorf("verdict %s %s, want %s; lost %+v; findings %+v", got, res.Direction, tc.want, res.Lost, res.Findings)
			}
			if tc.want == diagnose.VerdictBlackhole && (res.Direction != diagnose.Upstream || res.PathMTURange.Lost != 1500) {
				t.Errorf("direction %s bracket %+v, want upstream, 1500 lost", res.Direction, res.PathMTURange)
			}
		})
	}
}

// TestOneWayCaptureIsNoLoss: a capture of one direction only (asymmetric
// routing, or a filter on the source address): the server's SYN-ACK, its
// flight and its ordinary retransmissions, and never a packet from the
// client. No acknowledgement could be seen, so none missing is a loss.
func TestOneWayCaptureIsNoLoss(t *testing.T) {
	b := newPcap(t)
	c, s := testClient, testServer
	b.add(tcpSeg{src: s, dst: c, seq: 5000, ack: 1001, syn: true, ackF: true, mss: 1460})
	fl := serverRecord(3314)
	for i, seg := range flightSegs(len(fl), 1448) {
		b.add(tcpSeg{src: s, dst: c, seq: 5001 + uint32(seg[0]), ack: 1518, ackF: true, data: fl[seg[0]:seg[1]], after: time.Duration(i+1) * time.Millisecond})
	}
	b.add(tcpSeg{src: s, dst: c, seq: 5001, ack: 1518, ackF: true, data: fl[:1448], after: 300 * time.Millisecond})
	b.add(tcpSeg{src: s, dst: c, seq: 5001 + 3314, ack: 1600, ackF: true, fin: true, after: 2 * time.Second})
	res, err := File(b.file("one-way.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verdict %s, outcomes %v, findings %+v", res.Verdict, res.Outcomes, res.Findings)
	if res.Verdict == diagnose.VerdictBlackhole || res.Verdict == diagnose.VerdictTLSFailed || len(res.Lost) != 0 {
		t.Errorf("verdict %s, lost %+v from a capture that holds no packet of the receiver", res.Verdict, res.Lost)
	}
}
