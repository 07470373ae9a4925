package flow_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// Handshake.Verified: only a flow whose capture shows the three-way
// exchange, the client acknowledging the server's ISN, is verified; the
// others are still classified (analyze reads captures that start
// mid-flow) but marked unverified.
func TestVerified(t *testing.T) {
	hello := pqHello(t)
	cases := []struct {
		name     string
		run      func(f *feeder)
		verified bool
		outcome  diagnose.Outcome
	}{
		{"full handshake", func(f *feeder) {
			handshake(t, f, &conn{c: cli4, s: srv4, cseq: 100, sseq: 9000}, hello)
		}, true, diagnose.Completed},
		{"full handshake, IPv6, the client's bare ACK not captured", func(f *feeder) {
			k := &conn{c: cli6, s: srv6, cseq: 100, sseq: 9000}
			f.send(seg{src: k.c, dst: k.s, seq: k.cseq - 1, flags: packet.SYN, mss: 1440}, time.Millisecond)
			f.send(seg{src: k.s, dst: k.c, seq: k.sseq - 1, ack: k.cseq, flags: packet.SYN | packet.ACK, mss: 1440}, time.Millisecond)
			k.client(f, hello[:1428], -1)
			k.client(f, hello[1428:], -1)
			k.ackClient(f)
			k.server(f, record(22, 200, 2))
			k.ackServer(f)
			k.client(f, record(23, 60), -1)
		}, true, diagnose.Completed},
		{"mid-flow", func(f *feeder) {
			k := &conn{c: cli6, s: srv6, cseq: 1000, sseq: 5000}
			k.client(f, hello, -1)
			k.ackClient(f)
			k.server(f, record(22, 200, 2))
			k.ackServer(f)
			k.client(f, record(23, 60), -1)
		}, false, diagnose.Completed},
		{"spoofed SYN, blind hello with a guessed acknowledgement", func(f *feeder) {
			k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 9000}
			f.send(seg{src: k.c, dst: k.s, seq: k.cseq - 1, flags: packet.SYN, mss: 1460}, time.Millisecond)
			f.send(seg{src: k.s, dst: k.c, seq: k.sseq - 1, ack: k.cseq, flags: packet.SYN | packet.ACK, mss: 1460}, time.Millisecond)
			k.sseq = 123456 // what the sender, who never saw the SYN-ACK, guesses
			k.client(f, hello, -1)
			f.tr.Flush(f.now.Add(time.Minute))
		}, false, ""},
		{"SYN-ACK that does not acknowledge the SYN", func(f *feeder) {
			k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 9000}
			f.send(seg{src: k.c, dst: k.s, seq: k.cseq - 1, flags: packet.SYN, mss: 1460}, time.Millisecond)
			f.send(seg{src: k.s, dst: k.c, seq: k.sseq - 1, ack: 777, flags: packet.SYN | packet.ACK, mss: 1460}, time.Millisecond)
			f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq, flags: packet.ACK}, time.Millisecond)
			k.client(f, hello, -1)
			f.tr.Flush(f.now.Add(time.Minute))
		}, false, ""},
		{"blind stall: a hello's head and a tail past a gap, no SYN", func(f *feeder) {
			k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 9000}
			head := seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq, flags: packet.ACK, payload: hello[:1000], snap: -1}
			tail := seg{src: k.c, dst: k.s, seq: k.cseq + 1448, ack: k.sseq, flags: packet.ACK, payload: hello[1448:], snap: -1}
			for range 2 {
				f.send(head, time.Second)
				f.send(tail, time.Millisecond)
			}
			f.tr.Flush(f.now.Add(time.Minute))
		}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFeeder(t, flow.Config{Ports: []uint16{443}})
			c.run(f)
			if len(f.got) != 1 {
				t.Fatalf("got %d handshakes, want 1: %+v", len(f.got), f.got)
			}
			h := f.got[0]
			if h.Verified != c.verified || (c.outcome != "" && h.Outcome != c.outcome) {
				t.Errorf("verified %v, outcome %s (%s); want verified %v, outcome %q", h.Verified, h.Outcome, h.Detail, c.verified, c.outcome)
			}
		})
	}
}

// A full flow table evicts unverified handshakes before real ones: a
// flood of forged one-segment hellos, ten times the table, leaves a real
// connection (opened before it, finished after it) whole.
func TestVerifiedSurviveFlood(t *testing.T) {
	hello := pqHello(t)
	f := newFeeder(t, flow.Config{Ports: []uint16{443}, MaxFlows: 100})
	k := &conn{c: cli4, s: srv4, cseq: 100, sseq: 9000}
	k.open(f, 1460)
	k.client(f, hello[:1448], -1)
	for i := range 1000 {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), uint16(1024+i))
		f.send(seg{src: src, dst: srv4, seq: uint32(i) * 7919, ack: 5, flags: packet.ACK | packet.PSH, payload: hello[:600]}, time.Microsecond)
	}
	k.client(f, hello[1448:], -1)
	k.ackClient(f)
	k.server(f, record(22, 200, 2))
	k.ackServer(f)
	k.client(f, record(23, 60), -1)
	st := f.tr.Stats()
	var real []flow.Handshake
	for _, h := range f.got {
		if h.Client == cli4 {
			real = append(real, h)
		}
	}
	if len(real) != 1 || real[0].Outcome != diagnose.Completed || !real[0].Verified || st.Evicted < 900 {
		t.Errorf("the real connection gave %+v (want one completed, verified handshake); %d evicted", real, st.Evicted)
	}
}
