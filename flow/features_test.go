package flow_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/tlswire"
)

// TestHelloFeatures checks what a handshake says its hello carried, for a
// hello read whole and for one a device cut after its first segment and
// reset (S13: the server sees the first 1448 bytes, then a RST as from
// the client).
func TestHelloFeatures(t *testing.T) {
	build := func(spec tlswire.HelloSpec) []byte {
		spec.ServerName = "example.test"
		h, err := tlswire.Build(spec, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return h.Record
	}
	pq := build(tlswire.HelloSpec{Size: 1503, Groups: []tlswire.Group{tlswire.GroupX25519MLKEM768, tlswire.GroupX25519}})
	classic := build(tlswire.HelloSpec{})
	offered := build(tlswire.HelloSpec{OfferOnly: []tlswire.Group{tlswire.GroupX25519MLKEM768}, MLDSA: true})
	all := tlswire.ReadKeyShare | tlswire.ReadGroups | tlswire.ReadSigAlgs

	type want struct {
		outcome                diagnose.Outcome
		pq, offered, ml, split bool
		read                   uint8
		forged                 bool // the reset's TTL is not the client's
	}
	for _, c := range []struct {
		name  string
		hello []byte
		cut   int // the first segment's size; the rest never comes, a reset does (0: whole)
		// rstHop is the reset's TTL (the client's packets have 64): 63
		// for a device's one router before the server
		rstHop uint8
		want   want
	}{
		{"pq, completed", pq, 0, 0, want{diagnose.Completed, true, false, false, true, all, false}},
		{"classic, completed", classic, 0, 0, want{diagnose.Completed, false, false, false, false, all, false}},
		{"offered without share, mldsa", offered, 0, 0, want{diagnose.Completed, false, true, true, false, all, false}},
		{"pq, cut and reset by a device", pq, 1448, 63, want{diagnose.Reset, true, false, false, true, all, true}},
		// Cut inside the key share's key: the share is seen, what follows
		// it (any other extension) is not known to be absent.
		{"pq, cut at 300 bytes and reset", pq, 300, 63, want{diagnose.Reset, true, false, false, true,
			tlswire.ReadGroups | tlswire.ReadSigAlgs, true}},
		// Cut before any extension: nothing is known either way.
		{"classic, cut at 60 bytes and reset", classic, 60, 63, want{diagnose.Reset, false, false, false, true, 0, true}},
		// The client's own reset comes with its own TTL.
		{"pq, the client resets after its first segment", pq, 1448, 64, want{diagnose.Reset, true, false, false, true, all, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFeeder(t, flow.Config{Ports: []uint16{443}})
			k := &conn{c: cli4, s: srv4, cseq: 1000, sseq: 5000}
			if c.cut == 0 {
				handshake(t, f, k, c.hello)
			} else {
				k.open(f, 1460)
				k.client(f, c.hello[:c.cut], -1)
				k.ackClient(f)
				f.send(seg{src: k.c, dst: k.s, seq: k.cseq, ack: k.sseq, flags: packet.RST | packet.ACK, hop: c.rstHop}, time.Millisecond)
			}
			f.tr.Advance(f.now.Add(time.Minute))
			if len(f.got) != 1 {
				t.Fatalf("got %d handshakes", len(f.got))
			}
			h := f.got[0]
			got := want{h.Outcome, h.PQKeyShare, h.PQOffered, h.MLDSA, h.HelloSplit, h.HelloRead, h.ResetHopDiffers}
			if h.HelloWhole != (c.cut == 0) {
				t.Errorf("hello whole %v, want %v", h.HelloWhole, c.cut == 0)
			}
			if got != c.want {
				t.Errorf("got %+v (%s), want %+v", got, h.Detail, c.want)
			}
		})
	}
}
