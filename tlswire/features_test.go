package tlswire

import (
	"bytes"
	"crypto/rand"
	"slices"
	"testing"
)

// featureHellos are built hellos and what each carries.
func featureHellos(t testing.TB) []struct {
	name string
	msg  []byte
	want HelloFeatures
} {
	type c = struct {
		name string
		msg  []byte
		want HelloFeatures
	}
	build := func(spec HelloSpec) []byte {
		h, err := Build(spec, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return h.Message()
	}
	pq := build(HelloSpec{ServerName: "server.mtuscope.test", Groups: []Group{GroupX25519MLKEM768, GroupX25519}, MLDSA: true})
	classic := build(HelloSpec{ServerName: "server.mtuscope.test"})
	offered := build(HelloSpec{OfferOnly: []Group{GroupX25519MLKEM768}})
	return []c{
		{"pq_mldsa", pq, HelloFeatures{Size: len(pq), Read: len(pq), PQKeyShare: Present, PQGroup: GroupX25519MLKEM768, PQOffered: Present, MLDSA: Present,
			SNI: Present, ServerName: "server.mtuscope.test"}},
		{"classic", classic, HelloFeatures{Size: len(classic), Read: len(classic), PQKeyShare: Absent, PQOffered: Absent, MLDSA: Absent,
			SNI: Present, ServerName: "server.mtuscope.test"}},
		{"offered_no_sni", offered, HelloFeatures{Size: len(offered), Read: len(offered), PQKeyShare: Absent, PQOffered: Present,
			MLDSA: Absent, SNI: Absent}},
	}
}

func TestReadHelloFeatures(t *testing.T) {
	for _, c := range featureHellos(t) {
		t.Run(c.name, func(t *testing.T) {
			if got := ReadHelloFeatures(c.msg); got != c.want {
				t.Errorf("whole hello: %+v, want %+v", got, c.want)
			}
			// Every prefix: never a contradiction of the whole, and the
			// size known once the header arrived.
			unknownAt := -1
			for n := 0; n < len(c.msg); n++ {
				got := ReadHelloFeatures(c.msg[:n])
				if n >= 4 && (got.Size != c.want.Size || got.Read != n) {
					t.Fatalf("prefix %d: size %d read %d, want %d and %d", n, got.Size, got.Read, c.want.Size, n)
				}
				for _, p := range []struct {
					name      string
					got, want Presence
				}{{"pq_key_share", got.PQKeyShare, c.want.PQKeyShare}, {"pq_offered", got.PQOffered, c.want.PQOffered},
					{"mldsa", got.MLDSA, c.want.MLDSA}, {"sni", got.SNI, c.want.SNI}} {
					if p.got != Unknown && p.got != p.want {
						t.Fatalf("prefix %d of %d: %s %v, the whole hello says %v", n, len(c.msg), p.name, p.got, p.want)
					}
				}
				if got.PQKeyShare == Unknown {
					unknownAt = n
				}
			}
			// A post-quantum key share is known before the end: its
			// group header comes before its 1,216-byte key.
			if c.want.PQKeyShare == Present && unknownAt >= len(c.msg)-1000 {
				t.Errorf("the key share stays unknown until the last byte")
			}
		})
	}
}

// TestReadHelloFeaturesPQHeaderOnly: the post-quantum share's group
// field is enough, its 1,216-byte key may never arrive.
func TestReadHelloFeaturesPQHeaderOnly(t *testing.T) {
	msg := featureHellos(t)[0].msg
	i := bytes.Index(msg, []byte{0x11, 0xec, 0x04, 0xc0}) // group 0x11EC, key length 1216
	if i < 0 {
		t.Fatal("no X25519MLKEM768 key share entry in the built hello")
	}
	if got := ReadHelloFeatures(msg[:i+2]).PQKeyShare; got != Present {
		t.Errorf("the entry's group only: %v, want yes", got)
	}
	if got := ReadHelloFeatures(msg[:i+1]).PQKeyShare; got != Unknown {
		t.Errorf("half the entry's group: %v, want unknown", got)
	}
}

// TestReadHelloFeaturesCrafted: input that is not a whole, well-formed
// ClientHello says only what it shows.
func TestReadHelloFeaturesCrafted(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"server_hello", []byte{2, 0, 0, 4, 3, 3, 0, 0}},
		{"huge_length", []byte{1, 0xff, 0xff, 0xff}},
		{"ext_length_beyond", append(append([]byte{1, 0, 0, 44, 3, 3}, make([]byte, 32)...), 0, 0, 0, 0, 0xff, 0xff)},
		{"key_share_group_cut", append(append([]byte{1, 0, 0, 50, 3, 3}, make([]byte, 32)...), 0, 0, 0, 0, 0, 10, 0, 51, 0, 6, 0, 4, 0x11)},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ReadHelloFeatures(c.in)
			for _, p := range []Presence{got.PQKeyShare, got.PQOffered, got.MLDSA} {
				if p == Present {
					t.Errorf("%+v: a feature present in input that does not show it", got)
				}
			}
		})
	}
}

func TestPresenceJSON(t *testing.T) {
	for _, p := range []Presence{Unknown, Absent, Present} {
		b, _ := p.MarshalJSON()
		var q Presence
		if err := q.UnmarshalJSON(b); err != nil || q != p {
			t.Errorf("%v -> %s -> %v, %v", p, b, q, err)
		}
	}
}

// FuzzReadHelloFeatures: never panics, and on a whole hello that
// ParseClientHello reads, says what it says.
func FuzzReadHelloFeatures(f *testing.F) {
	for _, c := range featureHellos(f) {
		f.Add(c.msg)
		f.Add(c.msg[:len(c.msg)/2])
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got := ReadHelloFeatures(msg)
		if got.Read > len(msg) {
			t.Fatalf("read %d of %d bytes", got.Read, len(msg))
		}
		ch, err := ParseClientHello(msg)
		if err != nil || ch.Size != len(msg) {
			return
		}
		want := Absent
		if slices.ContainsFunc(ch.KeyShareGroups, Group.PostQuantum) {
			want = Present
		} else if len(ch.KeyShareGroups) > 8 {
			want = Unknown // beyond the eight shares a scan records
		}
		if got.PQKeyShare != want {
			t.Errorf("pq key share %v, ParseClientHello says %v", got.PQKeyShare, ch.KeyShareGroups)
		}
		want = Absent
		for _, a := range ch.SignatureAlgorithms {
			if a >= 0x0904 && a <= 0x0906 {
				want = Present
			}
		}
		if got.MLDSA != want {
			t.Errorf("mldsa %v, ParseClientHello says %x", got.MLDSA, ch.SignatureAlgorithms)
		}
	})
}
