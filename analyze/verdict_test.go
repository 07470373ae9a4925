package analyze

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/findingtest"
)

// The path's verdict from one capture: what the handshakes show, counted
// as package flow's tracker (watch's) emits them, and worded as the
// packets say.

func verdictFindings(res *Result) string {
	var b strings.Builder
	for _, f := range res.Findings {
		b.WriteString(f.Code + ": " + f.Detail + "\n")
	}
	return b.String()
}

// TestClientResetIsTheClients: the client takes the server's flight,
// acknowledges it and resets the connection (it refused the certificate,
// say). Main said "The server closed or reset the connection".
func TestClientResetIsTheClients(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, false)
	v.open()
	v.up(0, helloRecord(517), 0, time.Millisecond)
	v.ackUp(0, 517, 10*time.Millisecond)
	v.down(0, serverRecord(1200), 517, time.Millisecond)
	v.ackDown(517, 1200, nil, 100*time.Microsecond)
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn + 518, ack: v.sisn + 1201, ackF: true, rst: true, after: 5 * time.Millisecond})
	res, err := File(b.file("client-rst.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	text := verdictFindings(res)
	if strings.Contains(text, "The server closed") || !strings.Contains(text, "the client reset") {
		t.Errorf("verdict %s; findings do not say the client reset:\n%s", res.Verdict, text)
	}
	for _, f := range res.Findings {
		for _, p := range findingtest.Problems(f) {
			t.Error(p)
		}
	}
}

// TestUnemittedConnectionsDoNotCount: a SYN scan of port 443 (SYN,
// SYN-ACK, the scanner's RST) opens no connection; the tracker emits no
// handshake for it. Main counted three handshakes, "reset before any
// ClientHello", and concluded tls_failed.
func TestUnemittedConnectionsDoNotCount(t *testing.T) {
	b := newPcap(t)
	for i := range 3 {
		c := netip.AddrPortFrom(testClient.Addr(), uint16(50000+i))
		isn, sisn := uint32(100+i*1000), uint32(90000+i*1000)
		b.add(tcpSeg{src: c, dst: testServer, seq: isn, syn: true, mss: 1460, ttl: 62, after: time.Millisecond})
		b.add(tcpSeg{src: testServer, dst: c, seq: sisn, ack: isn + 1, syn: true, ackF: true, mss: 1460, after: 10 * time.Microsecond})
		b.add(tcpSeg{src: c, dst: testServer, seq: isn + 1, rst: true, ttl: 62, after: time.Millisecond})
	}
	res, err := File(b.file("scan.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict == diagnose.VerdictTLSFailed {
		t.Errorf("tls_failed from a SYN scan:\n%s", verdictFindings(res))
	}
	hs := 0
	for _, p := range res.Paths {
		hs += p.Handshakes
	}
	if hs != total(res.Outcomes) {
		t.Errorf("the paths count %d handshakes, the tracker emitted %d (%v)", hs, total(res.Outcomes), res.Outcomes)
	}
}

// TestCaptureThatEndsIsNoFailure: the server's capture holds the
// ClientHello, the server's flight, and ends before the client's
// acknowledgement. Main: "the server acknowledged the ClientHello but
// never answered", tls_failed.
func TestCaptureThatEndsIsNoFailure(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, true)
	v.open()
	v.up(0, helloRecord(517), 0, time.Millisecond)
	v.ackUp(0, 517, 100*time.Microsecond)
	v.down(0, serverRecord(1200), 517, time.Millisecond)
	res, err := File(b.file("ends.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	text := verdictFindings(res)
	if res.Verdict == diagnose.VerdictTLSFailed || res.Verdict == diagnose.VerdictBlackhole || strings.Contains(text, "never answered") {
		t.Errorf("verdict %s from a capture that simply ends:\n%s", res.Verdict, text)
	}
	if res.Verdict != diagnose.VerdictInconclusive {
		t.Errorf("verdict %s, want inconclusive:\n%s", res.Verdict, text)
	}
}

// TestHeldOutBracket rebuilds the held-out server capture's figures: the
// flight (3474 bytes, one TSO super-segment) loses its full-size packets,
// its 630-byte tail gets through, the largest upstream packet is the
// 569-byte hello. Main said "path MTU 630 to 1499", "Clamp the TCP MSS to
// 590", "Set the MTU of the tunnel ... to 630" and "this host's large
// packets arrive (0 bytes passed)".
func TestHeldOutBracket(t *testing.T) {
	b := newPcap(t)
	v := newConv(b, true)
	v.open()
	v.up(0, helloRecord(517), 0, time.Millisecond)
	v.ackUp(0, 517, 100*time.Microsecond)
	fl := serverRecord(3474)
	v.down(0, fl, 517, time.Millisecond)
	v.ackDown(517, 0, [][2]int{{2896, 3474}}, 20*time.Millisecond)
	for _, gap := range []time.Duration{200, 400, 800, 1600} {
		v.down(0, fl[:1448], 517, gap*time.Millisecond)
	}
	v.b.add(tcpSeg{src: v.c, dst: v.s, seq: v.cisn + 518, ack: v.sisn + 1, ackF: true, fin: true, ttl: 62, after: 500 * time.Millisecond})
	res, err := File(b.file("held-out-server.pcap"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := res.PathMTURange
	if res.Verdict != diagnose.VerdictBlackhole || res.Direction != diagnose.Downstream || res.PathMTU != 0 || r.Delivered != 630 || r.Lost != 1500 || r.SentBetween != 0 {
		t.Fatalf("%s %s path MTU %d bracket %+v, want pmtud_blackhole downstream, no path MTU, 630-1500 with nothing between",
			res.Verdict, res.Direction, res.PathMTU, r)
	}
	if got := r.Reason(); got != "nothing between 631 and 1499 bytes was sent" {
		t.Errorf("reason %q", got)
	}
	text := verdictFindings(res)
	for _, f := range res.Fixes {
		text += f.Code + ": " + f.Title + " " + strings.Join(f.Commands, " ") + "\n"
	}
	for _, bad := range []string{"590", "mtu 630", "tunnel_mtu", "0 bytes passed", "larger than 630"} {
		if strings.Contains(text, bad) {
			t.Errorf("%q in\n%s", bad, text)
		}
	}
	if !strings.Contains(text, "were not tested at these sizes") || !strings.Contains(text, "set rt mtu") {
		t.Errorf("findings and fixes:\n%s", text)
	}
	for _, f := range res.Findings {
		for _, p := range findingtest.Problems(f) {
			t.Error(p)
		}
	}
}
