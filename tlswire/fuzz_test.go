package tlswire

import (
	"crypto/rand"
	"testing"
)

func seedHello(t testing.TB, size int) []byte {
	h, err := Build(HelloSpec{ServerName: "seed.example", Groups: []Group{GroupX25519MLKEM768, GroupX25519}, ALPN: []string{"h2"}, Size: size}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return h.Record
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(seedHello(f, 0)[RecordHeaderLen:])
	f.Add(seedHello(f, 1800)[RecordHeaderLen:])
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := ParseClientHello(b)
		if err == nil && ch.Size > len(b) {
			t.Fatalf("size %d beyond input %d", ch.Size, len(b))
		}
	})
}

func FuzzParseServerHello(f *testing.F) {
	f.Add([]byte{2, 0, 0, 38, 3, 3})
	f.Add(append([]byte{2, 0, 0, 46, 3, 3}, make([]byte, 44)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseServerHello(b)
	})
}

// FuzzFlight feeds arbitrary server bytes, in two pieces, to a Flight.
func FuzzFlight(f *testing.F) {
	f.Add([]byte("SSH-2.0-x\r\n"), 3)
	f.Add([]byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, 2)
	f.Add([]byte{22, 3, 3, 0, 9, 14, 0, 0, 0, 21, 3, 3, 0, 2}, 7)
	f.Add([]byte{23, 3, 3, 0, 1, 0}, 1)
	h, err := Build(HelloSpec{Groups: []Group{GroupX25519MLKEM768, GroupX25519, GroupP256}}, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		fl := NewFlight(h)
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		if _, err := fl.Feed(b[:cut]); err != nil {
			return
		}
		_, _ = fl.Feed(b[cut:])
		if fl.Bytes != len(b) && !fl.Complete {
			t.Fatalf("counted %d bytes of %d", fl.Bytes, len(b))
		}
	})
}

// TestCraftedInputs runs truncated and inconsistent inputs through every
// parser: none may panic, each must fail.
func TestCraftedInputs(t *testing.T) {
	good := seedHello(t, 0)[RecordHeaderLen:]
	cases := map[string][]byte{
		"empty":                  {},
		"type only":              {1},
		"length beyond input":    {1, 0, 1, 0, 3, 3},
		"no random":              {1, 0, 0, 2, 3, 3},
		"session id overruns":    append([]byte{1, 0, 0, 35, 3, 3}, append(make([]byte, 32), 200)...),
		"odd cipher list":        append(append([]byte{1, 0, 0, 38, 3, 3}, make([]byte, 32)...), 0, 0, 1, 0),
		"truncated at half":      good[:len(good)/2],
		"extension len overruns": overrunExtension(good),
		"not a client hello":     {2, 0, 0, 0},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseClientHello(b); err == nil {
				t.Errorf("ParseClientHello accepted %x", b)
			}
			if _, err := ParseServerHello(b); err == nil {
				t.Errorf("ParseServerHello accepted %x", b)
			}
			if _, err := ParseRecordHeader(b); err == nil && len(b) >= 5 && b[0] < 20 {
				t.Errorf("ParseRecordHeader accepted %x", b)
			}
		})
	}
}

// overrunExtension returns msg with its first extension's length raised
// beyond the end of the message, body and header lengths unchanged.
func overrunExtension(msg []byte) []byte {
	b := append([]byte(nil), msg...)
	off := 4 + 2 + 32
	off += 1 + int(b[off])
	off += 2 + int(b[off])<<8 | int(b[off+1])
	off += 1 + int(b[off])
	off += 2 // extensions block length
	b[off+2], b[off+3] = 0xff, 0xff
	return b
}

// FuzzScanClientHello checks that the allocation-free scan agrees with
// ParseClientHello on every input: same verdict, server name, key shares.
func FuzzScanClientHello(f *testing.F) {
	f.Add(seedHello(f, 0)[RecordHeaderLen:])
	f.Add(seedHello(f, 1800)[RecordHeaderLen:])
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, perr := ParseClientHello(b)
		var s HelloSummary
		serr := ScanClientHello(b, &s)
		if (perr == nil) != (serr == nil) {
			// The full parser also checks extensions the scan skips.
			if serr == nil {
				return
			}
			t.Fatalf("scan error %v, parse error %v", serr, perr)
		}
		if perr != nil {
			return
		}
		if string(s.ServerName) != ch.ServerName || s.Size != ch.Size || s.NKeyShares != len(ch.KeyShareGroups) {
			t.Fatalf("scan %+v, parse %+v", s, ch)
		}
		for i, g := range s.Shares() {
			if g != ch.KeyShareGroups[i] {
				t.Fatalf("key share %d: scan %v, parse %v", i, g, ch.KeyShareGroups[i])
			}
		}
	})
}

func TestScanClientHelloAllocs(t *testing.T) {
	msg := seedHello(t, 1800)[RecordHeaderLen:]
	var s HelloSummary
	if n := testing.AllocsPerRun(100, func() { ScanClientHello(msg, &s) }); n != 0 {
		t.Errorf("ScanClientHello allocates %v times", n)
	}
	if string(s.ServerName) != "seed.example" || s.Shares()[0] != GroupX25519MLKEM768 {
		t.Errorf("scan %+v", s)
	}
}
