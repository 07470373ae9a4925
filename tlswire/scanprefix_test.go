package tlswire

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func buildMsg(t testing.TB, spec HelloSpec) []byte {
	t.Helper()
	h, err := Build(spec, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return h.Message()
}

// TestScanFeatures checks the features a scan reports for hellos that
// differ in one thing each, whole and cut where a device drops a hello's
// second segment (1448 bytes of a 1500-byte link's segment hold the
// record header, so 1443 of the message).
func TestScanFeatures(t *testing.T) {
	classic := HelloSpec{ServerName: "a.example"}
	pq := HelloSpec{ServerName: "a.example", Groups: []Group{GroupX25519MLKEM768, GroupX25519}, Size: 1503} // Go 1.26's size
	offered := HelloSpec{ServerName: "a.example", OfferOnly: []Group{GroupX25519MLKEM768}}
	mldsa := HelloSpec{ServerName: "a.example", MLDSA: true}
	for _, c := range []struct {
		name                 string
		spec                 HelloSpec
		cut                  int // bytes of the message held; 0: all
		pqShare, pqGroup, ml bool
		partial              bool
		read                 uint8
	}{
		{"classic", classic, 0, false, false, false, false, readAll},
		{"pq share", pq, 0, true, true, false, false, readAll},
		{"pq offered without share", offered, 0, false, true, false, false, readAll},
		{"mldsa", mldsa, 0, false, false, true, false, readAll},
		{"pq share, second segment lost (the padding cut)", pq, 1443, true, true, false, true, readAll},
		{"pq share, cut inside the first entry's key", pq, 300, true, true, false, true, ReadGroups | ReadSigAlgs},
		{"mldsa cut after its extensions", mldsa, 200, false, false, true, true, ReadGroups | ReadSigAlgs},
		{"classic cut in the fixed fields", classic, 30, false, false, false, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := buildMsg(t, c.spec)
			b := msg
			if c.cut > 0 {
				b = msg[:c.cut]
			}
			var s HelloSummary
			err := ScanClientHelloPrefix(b, &s)
			if c.cut == 30 {
				if !errors.Is(err, ErrShort) {
					t.Fatalf("err %v, want ErrShort", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.PQShare() != c.pqShare || s.PQGroup != c.pqGroup || s.MLDSA != c.ml || s.Partial != c.partial || s.Read != c.read {
				t.Errorf("pq share %v group %v mldsa %v partial %v read %03b; want %v %v %v %v %03b",
					s.PQShare(), s.PQGroup, s.MLDSA, s.Partial, s.Read, c.pqShare, c.pqGroup, c.ml, c.partial, c.read)
			}
			if s.Size != len(msg) {
				t.Errorf("size %d, want %d", s.Size, len(msg))
			}
			if c.cut == 0 {
				var w HelloSummary
				if err := ScanClientHello(b, &w); err != nil || !sameSummary(&w, &s) {
					t.Errorf("whole scan %+v (%v) differs from the prefix scan %+v", w, err, s)
				}
			} else if err := ScanClientHello(b, &s); !errors.Is(err, ErrShort) {
				t.Errorf("ScanClientHello of a cut hello: %v, want ErrShort", err)
			}
		})
	}
}

// TestScanPrefixCrafted feeds hand-made prefixes: not a hello, lying
// lengths, and a key_share whose group is held but not its key.
func TestScanPrefixCrafted(t *testing.T) {
	fixed := append([]byte{3, 3}, make([]byte, 32)...)
	fixed = append(fixed, 0, 0, 2, 0x13, 0x01, 1, 0) // no session id, one suite, null compression
	hello := func(bodyLen int, rest ...byte) []byte {
		b := []byte{TypeClientHello, byte(bodyLen >> 16), byte(bodyLen >> 8), byte(bodyLen)}
		return append(append(b, fixed...), rest...)
	}
	for _, c := range []struct {
		name    string
		b       []byte
		err     error
		pqShare bool
	}{
		{"empty", nil, ErrShort, false},
		{"server hello", []byte{TypeServerHello, 0, 0, 40}, ErrMalformed, false},
		{"extensions block shorter than the bytes held", hello(2000, 0, 2, 0, 51, 0, 0, 0, 0), ErrMalformed, false},
		{"key share group held, key not", hello(2000, 0x05, 0xff, 0, 51, 0x04, 0xc6, 0x04, 0xc4, 0x11, 0xec, 0x04, 0xc0, 1, 2), nil, true},
		{"key share list length only", hello(2000, 0x05, 0xff, 0, 51, 0x04, 0xc6, 0x04), nil, false},
		{"odd cipher suites", []byte{TypeClientHello, 0, 0, 90, 3, 3}, ErrShort, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var s HelloSummary
			err := ScanClientHelloPrefix(c.b, &s)
			if c.err == nil && err != nil || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if s.PQShare() != c.pqShare {
				t.Errorf("pq share %v, want %v", s.PQShare(), c.pqShare)
			}
			if err == nil && s.Read&ReadKeyShare != 0 {
				t.Error("a cut key_share read whole")
			}
		})
	}
}

// FuzzScanClientHelloPrefix checks, for any bytes and every prefix of
// them, that a prefix scan never panics, agrees with the whole scan when
// the message is whole, and on a cut message reports nothing the whole
// message does not hold.
func FuzzScanClientHelloPrefix(f *testing.F) {
	f.Add(seedHello(f, 0)[RecordHeaderLen:], 700)
	f.Add(buildMsg(f, HelloSpec{ServerName: "a.example", MLDSA: true, OfferOnly: []Group{GroupX25519MLKEM768}}), 120)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		var whole, part HelloSummary
		werr := ScanClientHello(b, &whole)
		perr := ScanClientHelloPrefix(b, &part)
		if werr == nil && (perr != nil || !sameSummary(&part, &whole)) {
			t.Fatalf("prefix scan of a whole hello %+v (%v), whole scan %+v", part, perr, whole)
		}
		if cut < 0 || cut > len(b) {
			return
		}
		if err := ScanClientHelloPrefix(b[:cut], &part); err != nil || werr != nil {
			return
		}
		if part.PQShare() && !whole.PQShare() || part.PQGroup && !whole.PQGroup || part.MLDSA && !whole.MLDSA ||
			part.HasServerName && !whole.HasServerName {
			t.Fatalf("cut at %d: %+v, whole %+v", cut, part, whole)
		}
		for _, bit := range []uint8{ReadKeyShare, ReadGroups, ReadSigAlgs} {
			if part.Read&bit == 0 {
				continue
			}
			switch {
			case bit == ReadKeyShare && part.PQShare() != whole.PQShare(),
				bit == ReadGroups && part.PQGroup != whole.PQGroup,
				bit == ReadSigAlgs && part.MLDSA != whole.MLDSA:
				t.Fatalf("cut at %d: read bit %03b says known, %+v, whole %+v", cut, bit, part, whole)
			}
		}
	})
}

func sameSummary(a, b *HelloSummary) bool {
	return a.Size == b.Size && bytes.Equal(a.ServerName, b.ServerName) && a.KeyShareGroups == b.KeyShareGroups &&
		a.NKeyShares == b.NKeyShares && a.PQGroup == b.PQGroup && a.MLDSA == b.MLDSA && a.Partial == b.Partial && a.Read == b.Read &&
		a.HasServerName == b.HasServerName
}

// TestScanListHead: a hello cut inside its supported_groups or
// signature_algorithms list shows the entries held, and no absence.
func TestScanListHead(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  HelloSpec
		entry []byte
		got   func(*HelloSummary) bool
		bit   uint8
	}{
		{"supported_groups", HelloSpec{OfferOnly: []Group{GroupX25519MLKEM768}}, []byte{0x11, 0xec},
			func(s *HelloSummary) bool { return s.PQGroup }, ReadGroups},
		{"signature_algorithms", HelloSpec{MLDSA: true}, []byte{0x09, 0x04},
			func(s *HelloSummary) bool { return s.MLDSA }, ReadSigAlgs},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := buildMsg(t, c.spec)
			i := bytes.Index(msg, c.entry)
			if i < 0 {
				t.Fatalf("no entry % x in the built hello", c.entry)
			}
			for cut, want := range map[int]bool{i + 1: false, i + 2: true} {
				var s HelloSummary
				if err := ScanClientHelloPrefix(msg[:cut], &s); err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				if c.got(&s) != want || s.Read&c.bit != 0 {
					t.Errorf("cut at %d: has %v (read %03b), want %v and not read whole", cut, c.got(&s), s.Read, want)
				}
			}
		})
	}
}
