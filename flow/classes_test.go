package flow_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// hrrRecord is a HelloRetryRequest: a ServerHello record whose random is
// RFC 8446's special value.
func hrrRecord() []byte {
	body := []byte{2, 0, 0, 0, 3, 3,
		0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
		0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
		0, 0x13, 0x01, 0, 0, 6, 0, 0x2b, 0, 2, 3, 4}
	body[3] = byte(len(body) - 4)
	return append([]byte{22, 3, 3, 0, byte(len(body))}, body...)
}

// TestStallNeedsLoss: a handshake that went no further, with nothing lost,
// is never a stall, however it ended: the timeout, the end of the capture,
// a jump in the capture's clock.
func TestStallNeedsLoss(t *testing.T) {
	hello := pqHello(t)
	// start sends the hello and the head of the server's answer (the
	// ServerHello and a certificate record), all acknowledged.
	start := func(f *feeder) *conn {
		k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 500}
		k.open(f, 1460)
		k.client(f, hello[:1448], -1)
		k.client(f, hello[1448:], -1)
		k.ackClient(f)
		k.server(f, append(record(22, 90, 2), record(22, 1200, 11)...))
		k.ackServer(f)
		return k
	}
	noStall := func(t *testing.T, got []flow.Handshake) flow.Handshake {
		t.Helper()
		if len(got) != 1 {
			t.Fatalf("got %d handshakes, want 1", len(got))
		}
		h := got[0]
		if h.Outcome == diagnose.StalledServerFlight || h.Outcome == diagnose.StalledClientHello {
			t.Fatalf("a handshake with nothing lost is %s (%s)", h.Outcome, h.Detail)
		}
		if d := h.End.Sub(h.Start); d < 0 || d > 2*flow.DefaultHandshakeTimeout {
			t.Errorf("duration %v, want within the timeout (from the connection's opening)", d)
		}
		return h
	}

	t.Run("client goes quiet", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		start(f)
		f.tr.Advance(f.now.Add(time.Minute))
		if h := noStall(t, f.got); h.Outcome != diagnose.Timeout || h.CaptureEnded {
			t.Errorf("got %s (%s) capture_ended %v, want a counted timeout", h.Outcome, h.Detail, h.CaptureEnded)
		}
	})
	t.Run("capture ends after the ServerHello", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		start(f)
		f.tr.Flush(f.now)
		if h := noStall(t, f.got); h.Outcome != diagnose.Timeout || !h.CaptureEnded {
			t.Errorf("got %s (%s) capture_ended %v, want timeout cut by the capture's end", h.Outcome, h.Detail, h.CaptureEnded)
		}
	})
	t.Run("flushed long after the end", func(t *testing.T) {
		// What watch --read did: flush at the last packet plus the timeout.
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		start(f)
		f.tr.Flush(f.now.Add(time.Hour))
		if h := noStall(t, f.got); !h.CaptureEnded {
			t.Errorf("got %s (%s), want cut by the capture's end", h.Outcome, h.Detail)
		}
	})
	t.Run("concatenated captures", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		start(f)
		// The next capture starts three months later.
		f.now = f.now.Add(90 * 24 * time.Hour)
		f.send(seg{src: cli6, dst: srv6, seq: 1, flags: packet.SYN, mss: 1440}, 0)
		if h := noStall(t, f.got); !h.CaptureEnded {
			t.Errorf("got %s (%s), want cut where its capture ended", h.Outcome, h.Detail)
		}
	})
	// At the client: the flight's head missing, its tail arrived past the
	// gap, the client's duplicate ACK said so. The capture ends 10 ms
	// later (the head may be on its way) or 2 s later (it was lost).
	for _, tc := range []struct {
		wait  time.Duration
		stall bool
	}{{10 * time.Millisecond, false}, {2 * time.Second, true}} {
		t.Run(fmt.Sprintf("gap at the capture's end, %v", tc.wait), func(t *testing.T) {
			f := newFeeder(t, flow.Config{Ports: []uint16{443}})
			k := start(f)
			k.sseq += 1448
			k.server(f, record(23, 300))
			k.sseq -= 1448 + 305
			k.ackServer(f, packet.SACKBlock{Left: k.sseq + 1448, Right: k.sseq + 1448 + 305})
			f.now = f.now.Add(tc.wait)
			f.send(seg{src: cli6, dst: srv6, seq: 1, flags: packet.SYN, mss: 1440}, 0)
			f.tr.Flush(f.now)
			var h flow.Handshake
			for _, g := range f.got {
				if g.Client == cli4 {
					h = g
				}
			}
			if stalled := h.Outcome == diagnose.StalledServerFlight; stalled != tc.stall || stalled == h.CaptureEnded {
				t.Errorf("got %s (%s) capture_ended %v, want stalled %v", h.Outcome, h.Detail, h.CaptureEnded, tc.stall)
			}
		})
	}
	// At the server: the flight's first segment retransmitted, nothing
	// acknowledged. The capture ends 3 ms later (the acknowledgement may be
	// on its way: a tail loss probe is answered within a round trip) or
	// 2 s later (it was lost).
	for _, tc := range []struct {
		wait  time.Duration
		stall bool
	}{{3 * time.Millisecond, false}, {2 * time.Second, true}} {
		t.Run(fmt.Sprintf("retransmission at the capture's end, %v", tc.wait), func(t *testing.T) {
			f := newFeeder(t, flow.Config{Ports: []uint16{443}})
			k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 500}
			k.open(f, 1460)
			k.client(f, hello[:1448], -1)
			k.client(f, hello[1448:], -1)
			k.ackClient(f)
			first := k.server(f, append(record(22, 90, 2), record(22, 1300, 11)...))
			k.server(f, record(23, 1400))
			f.send(first, 3*time.Millisecond)
			f.now = f.now.Add(tc.wait)
			f.send(seg{src: cli6, dst: srv6, seq: 1, flags: packet.SYN, mss: 1440}, 0)
			f.tr.Flush(f.now)
			var h flow.Handshake
			for _, g := range f.got {
				if g.Client == cli4 {
					h = g
				}
			}
			if stalled := h.Outcome == diagnose.StalledServerFlight; stalled != tc.stall || stalled == h.CaptureEnded {
				t.Errorf("got %s (%s) capture_ended %v, want stalled %v", h.Outcome, h.Detail, h.CaptureEnded, tc.stall)
			}
		})
	}
	t.Run("flight lost is still a stall", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		k := start(f)
		big := k.server(f, record(23, 1400))
		for range 3 {
			f.send(big, time.Second)
		}
		f.tr.Flush(f.now)
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.StalledServerFlight {
			t.Fatalf("got %+v, want stalled_server_flight", f.got)
		}
	})
}

// TestHelloRetryRequest: after a HelloRetryRequest the handshake goes on
// (a second ClientHello, then the real ServerHello and flight); a client
// record after the retry is not the end of it.
func TestHelloRetryRequest(t *testing.T) {
	hello := record(22, 500, 1)
	run := func(f *feeder, lost bool) {
		k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 500}
		k.open(f, 1460)
		k.client(f, hello, -1)
		k.ackClient(f)
		k.server(f, append(hrrRecord(), 20, 3, 3, 0, 1, 1))
		k.ackServer(f)
		k.client(f, append([]byte{20, 3, 3, 0, 1, 1}, record(22, 600, 1)...), -1)
		k.ackClient(f)
		flight := k.server(f, append(record(22, 90, 2), record(23, 1300)...))
		if lost {
			for range 3 {
				f.send(flight, time.Second)
			}
			f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: flight.seq, flags: packet.RST | packet.ACK}, time.Second)
			return
		}
		k.ackServer(f)
		k.client(f, record(23, 60), -1)
	}
	t.Run("completes", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		run(f, false)
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.Completed {
			t.Fatalf("got %+v, want completed", f.got)
		}
	})
	t.Run("flight after the retry black-holed", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{443}})
		run(f, true)
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.StalledServerFlight {
			t.Fatalf("got %+v, want stalled_server_flight", f.got)
		}
	})
}

// TestPlaintextFirst: protocols that upgrade to TLS (STARTTLS) or whose
// server speaks first carry their ClientHello after plaintext.
func TestPlaintextFirst(t *testing.T) {
	hello := pqHello(t)
	type line struct {
		server bool
		text   string
	}
	smtp := []line{{true, "220 mx.example.test ESMTP\r\n"}, {false, "EHLO client.example.test\r\n"},
		{true, "250-mx.example.test\r\n250 STARTTLS\r\n"}, {false, "STARTTLS\r\n"}, {true, "220 2.0.0 Ready to start TLS\r\n"}}
	xmpp := []line{{false, "<?xml version='1.0'?><stream:stream to='example.test' xmlns='jabber:client'>"},
		{true, "<?xml version='1.0'?><stream:stream from='example.test'><stream:features><starttls/></stream:features>"},
		{false, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"}, {true, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"}}
	for _, tc := range []struct {
		name  string
		port  uint16
		lines []line
	}{{"SMTP STARTTLS", 25, smtp}, {"XMPP STARTTLS", 5222, xmpp}} {
		for _, ports := range [][]uint16{nil, {tc.port}} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFeeder(t, flow.Config{Ports: ports})
				k := &conn{c: cli4, s: netip.AddrPortFrom(srv4.Addr(), tc.port), cseq: 100, sseq: 500}
				k.open(f, 1460)
				for _, l := range tc.lines {
					if l.server {
						k.server(f, []byte(l.text))
						k.ackServer(f)
					} else {
						k.client(f, []byte(l.text), -1)
						k.ackClient(f)
					}
				}
				k.client(f, hello[:1448], -1)
				k.client(f, hello[1448:], -1)
				k.ackClient(f)
				k.server(f, append(record(22, 90, 2), record(23, 1300)...))
				k.ackServer(f)
				k.client(f, record(23, 60), -1)
				f.tr.Flush(f.now)
				if len(f.got) != 1 || f.got[0].Outcome != diagnose.Completed {
					t.Fatalf("got %+v, want one completed handshake", f.got)
				}
				if h := f.got[0]; h.SNI != "example.test" || h.HelloBytes != len(hello) {
					t.Errorf("hello %d bytes, SNI %q: want %d, example.test", h.HelloBytes, h.SNI, len(hello))
				}
			})
		}
	}
	t.Run("plaintext that never upgrades", func(t *testing.T) {
		f := newFeeder(t, flow.Config{Ports: []uint16{25}})
		k := &conn{c: cli4, s: netip.AddrPortFrom(srv4.Addr(), 25), cseq: 100, sseq: 500}
		k.open(f, 1460)
		k.server(f, []byte("220 mx.example.test ESMTP\r\n"))
		k.client(f, []byte("QUIT\r\n"), -1)
		f.send(seg{src: k.s, dst: k.c, seq: k.sseq, ack: k.cseq, flags: packet.FIN | packet.ACK}, time.Millisecond)
		if len(f.got) != 1 || f.got[0].Outcome != diagnose.NotTLS || !strings.Contains(f.got[0].Detail, "220") {
			t.Fatalf("got %+v, want not_tls naming the server's banner", f.got)
		}
	})
}

// TestSSLv2Hello: an SSLv2-compatible ClientHello starts a handshake.
func TestSSLv2Hello(t *testing.T) {
	// Two-byte header (high bit set), CLIENT-HELLO, version 3.1, cipher
	// specs, session id and challenge lengths, then their bytes.
	body := []byte{1, 3, 1, 0, 6, 0, 0, 0, 16, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x35}
	body = append(body, make([]byte, 16)...)
	v2 := append([]byte{0x80, byte(len(body))}, body...)
	f := newFeeder(t, flow.Config{})
	k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 500}
	k.open(f, 1460)
	k.client(f, v2, -1)
	k.ackClient(f)
	k.server(f, append(record(22, 90, 2), record(22, 1200, 11)...))
	k.ackServer(f)
	k.client(f, record(22, 70, 16), -1)
	if len(f.got) != 1 || f.got[0].Outcome != diagnose.Completed || f.got[0].HelloBytes != len(v2) {
		t.Fatalf("got %+v, want one completed handshake with a %d-byte hello", f.got, len(v2))
	}
}

// TestSecondSynAck: a retransmitted SYN answered by a SYN-ACK with a new
// ISN; the client acknowledges the first, and the handshake completes on it.
func TestSecondSynAck(t *testing.T) {
	for _, acked := range []string{"first", "second"} {
		t.Run(acked, func(t *testing.T) {
			f := newFeeder(t, flow.Config{Ports: []uint16{443}})
			k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 500}
			f.send(seg{src: k.c, dst: k.s, seq: 99, flags: packet.SYN, mss: 1460}, time.Millisecond)
			f.send(seg{src: k.s, dst: k.c, seq: 499, ack: 100, flags: packet.SYN | packet.ACK, mss: 1460}, time.Millisecond)
			f.send(seg{src: k.c, dst: k.s, seq: 99, flags: packet.SYN, mss: 1460}, time.Second)
			f.send(seg{src: k.s, dst: k.c, seq: 90000, ack: 100, flags: packet.SYN | packet.ACK, mss: 1460}, time.Millisecond)
			if acked == "second" {
				k.sseq = 90001
			}
			f.send(seg{src: k.c, dst: k.s, seq: 100, ack: k.sseq, flags: packet.ACK}, time.Millisecond)
			k.client(f, record(22, 500, 1), -1)
			k.ackClient(f)
			k.server(f, append(record(22, 90, 2), record(23, 1300)...))
			k.ackServer(f)
			k.client(f, record(23, 60), -1)
			if len(f.got) != 1 || f.got[0].Outcome != diagnose.Completed {
				t.Fatalf("got %+v, want completed", f.got)
			}
		})
	}
}

// TestAlertNames: every alert code has its name (48 is unknown_ca).
func TestAlertNames(t *testing.T) {
	f := newFeeder(t, flow.Config{Ports: []uint16{443}})
	k := &conn{c: cli4, s: srv4, cseq: 1, sseq: 1}
	k.open(f, 1460)
	k.client(f, record(22, 300, 1), -1)
	k.ackClient(f)
	k.server(f, append(record(22, 90, 2), record(22, 1200, 11)...))
	k.ackServer(f)
	k.client(f, []byte{21, 3, 3, 0, 2, 2, 48}, -1)
	if len(f.got) != 1 || f.got[0].Outcome != diagnose.Alert || f.got[0].Detail != "client: unknown_ca" {
		t.Fatalf("got %+v, want alert client: unknown_ca", f.got)
	}
}
