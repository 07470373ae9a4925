package flow_test

import (
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
