package middlebox

import (
	"math/rand/v2"
	"testing"
)

// FuzzDecide sends hostile packets to every device: whole packets as
// given, and payloads wrapped in valid TCP segments cut at a fuzzed point
// with fuzzed sequence numbers, so the hello readers get the input. No
// device may panic, accept-or-not anything it cannot read as a packet, or
// ask to send a reset it cannot read back.
func FuzzDecide(f *testing.F) {
	pqHello := records(craft(f, helloSpec{shares: []uint16{pq, x25519}, length: 1700}), 1<<14)
	mldsa := records(craft(f, helloSpec{shares: []uint16{x25519}, sigalgs: []uint16{0x0905}, length: 300}), 100)
	c, s := ends(4)
	f.Add(tcpPacket(c, s, 1, 1, flagACK, pqHello[:900]), pqHello, uint16(900), uint32(0), false)
	f.Add(tcpPacket(c, s, 1, 1, flagACK, mldsa), mldsa, uint16(3), uint32(1<<31), true)
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 0, 64}, []byte{0x16, 3, 1, 0xff, 0xff, 1, 0xff, 0xff, 0xff}, uint16(1), uint32(0xffffffff), false)
	f.Fuzz(func(t *testing.T, pkt, payload []byte, cut uint16, seq uint32, v6 bool) {
		if len(payload) > 60000 {
			return // one IP packet's worth
		}
		fam := 4
		if v6 {
			fam = 6
		}
		c, s := ends(fam)
		first := payload[:min(int(cut), len(payload))]
		for _, k := range Kinds() {
			d, err := New(k, 4)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := parseSegment(pkt); !ok {
				if got := d.Decide(pkt); got.Action != Accept {
					t.Fatalf("%s: unreadable packet %v", k, got.Action)
				}
			} else {
				check(t, k, d.Decide(pkt))
			}
			check(t, k, d.Decide(tcpPacket(c, s, seq, 7, flagACK, first)))
			check(t, k, d.Decide(tcpPacket(c, s, seq+uint32(len(first)), 7, flagACK, payload[len(first):])))
			check(t, k, d.Decide(tcpPacket(c, s, seq, 7, flagACK, payload)))
			if d.Buffered() < 0 || d.Buffered() > MaxBuffered {
				t.Fatalf("%s: %d bytes buffered", k, d.Buffered())
			}
			if d.Flows() > 4 {
				t.Fatalf("%s: %d flows over a bound of 4", k, d.Flows())
			}
		}
	})
}

func check(t *testing.T, k Kind, d Decision) {
	t.Helper()
	if (d.Action == Reset) != (len(d.Resets) == 2) {
		t.Fatalf("%s: %v with %d resets", k, d.Action, len(d.Resets))
	}
	if d.Action == Reset && k != PQReject && k != MLDSAReject {
		t.Fatalf("%s resets", k)
	}
	if d.Action == Drop && k != SplitIntolerant && k != LengthWindow && k != PQReject && k != MLDSAReject {
		t.Fatalf("%s drops", k)
	}
	for _, r := range d.Resets {
		if _, ok := parseSegment(r); !ok {
			t.Fatalf("%s: unreadable reset % x", k, r)
		}
	}
}

// TestHostilePackets is FuzzDecide's property over 20,000 mutations of
// real hellos in real packets (bytes flipped, lengths corrupted, packets
// cut short, segments reordered), from a fixed seed, in every run: the
// fuzzing engine manages only a few executions a second on this busy
// machine.
func TestHostilePackets(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2026))
	hellos := [][]byte{
		records(craft(t, helloSpec{shares: []uint16{pq, x25519}, sigalgs: []uint16{0x0905}, length: 1700}), 1<<14),
		records(craft(t, helloSpec{shares: []uint16{x25519}, length: 300}), 90),
		goHello(t, nil),
	}
	runs := 20000
	if testing.Short() {
		runs = 2000 // the race pass: one goroutine here, nothing to race
	}
	for i := range runs {
		fam := 4 + 2*(i%2)
		c, s := ends(fam)
		hello := append([]byte(nil), hellos[i%len(hellos)]...)
		for range 1 + rng.IntN(4) {
			if len(hello) == 0 {
				break
			}
			switch at := rng.IntN(len(hello)); rng.IntN(3) {
			case 0:
				hello[at] ^= byte(1 + rng.IntN(255))
			case 1:
				hello[at] = []byte{0, 0xff, 0x16, 0x01, 0x03}[rng.IntN(5)]
			case 2:
				hello = hello[:at]
			}
		}
		if len(hello) == 0 {
			continue
		}
		cut := rng.IntN(len(hello))
		first := tcpPacket(c, s, 1000, 7, flagACK, hello[:cut])
		second := tcpPacket(c, s, 1000+uint32(cut), 7, flagACK, hello[cut:])
		if rng.IntN(4) == 0 {
			first, second = second, first
		}
		if rng.IntN(4) == 0 {
			first = first[:rng.IntN(len(first))]
		}
		for _, k := range Kinds() {
			d, err := New(k, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, pkt := range [][]byte{first, second, first} {
				dec := d.Decide(pkt)
				check(t, k, dec)
				if _, ok := parseSegment(pkt); !ok && dec.Action != Accept {
					t.Fatalf("%s: unreadable packet %v", k, dec.Action)
				}
			}
			if d.Buffered() < 0 || d.Buffered() > MaxBuffered || d.Flows() > 4 {
				t.Fatalf("%s: %d bytes, %d flows", k, d.Buffered(), d.Flows())
			}
		}
	}
}
