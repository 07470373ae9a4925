package tlswire

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

// exchangeRetry sends the record to addr, feeds the answer to a Flight and,
// when the server asks for another key share, answers its
// HelloRetryRequest on the same connection; it returns the last flight and
// the hello it answered.
func exchangeRetry(t *testing.T, addr string, h *Hello, record []byte) (*Flight, *Hello, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(record); err != nil {
		t.Fatal(err)
	}
	f := NewFlight(h)
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		done, ferr := f.Feed(buf[:n])
		if errors.Is(ferr, ErrHelloRetry) && f.RetryRequest != nil {
			second, rerr := h.AnswerRetry(f.RetryRequest, rand.Reader)
			if rerr != nil {
				return f, h, rerr
			}
			if _, err := c.Write(second.Record); err != nil {
				t.Fatal(err)
			}
			rest := f.Rest()
			h, f = second, NewFlight(second)
			done, ferr = f.Feed(rest)
		}
		if ferr != nil {
			return f, h, ferr
		}
		if done {
			return f, h, nil
		}
		if err != nil {
			return f, h, err
		}
	}
}

// TestHelloVariants builds each variant probe sends, parses it back and
// checks that it differs from the classical hello in the one thing it
// changes, then has crypto/tls complete a handshake with it (answering a
// HelloRetryRequest where the server asks for another share).
func TestHelloVariants(t *testing.T) {
	cert := testCert(t)
	goDefault := serve(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	classicOnly := serve(t, &tls.Config{Certificates: []tls.Certificate{cert}, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})
	base := HelloSpec{ServerName: "test.example", ALPN: []string{"http/1.1"}, Size: 600}
	classic := []Group{GroupX25519, GroupP256, GroupP384}
	for _, tc := range []struct {
		name       string
		spec       func(HelloSpec) HelloSpec
		server     string
		split      int // record split at this many message bytes, 0: one record
		shares     []Group
		groups     []Group
		mldsa      bool
		sni        string
		wantGroup  Group
		wantRetry  bool
		wantRecord int
	}{
		{name: "classical", spec: func(s HelloSpec) HelloSpec { return s }, server: goDefault,
			shares: []Group{GroupX25519, GroupP256}, groups: classic, sni: "test.example", wantGroup: GroupX25519, wantRecord: 600},
		{name: "without SNI", spec: func(s HelloSpec) HelloSpec { s.ServerName = ""; return s }, server: goDefault,
			shares: []Group{GroupX25519, GroupP256}, groups: classic, wantGroup: GroupX25519, wantRecord: 600},
		{name: "ML-DSA signature algorithms", spec: func(s HelloSpec) HelloSpec { s.MLDSA = true; return s }, server: goDefault,
			shares: []Group{GroupX25519, GroupP256}, groups: classic, mldsa: true, sni: "test.example", wantGroup: GroupX25519, wantRecord: 600},
		{name: "PQ offered without share, classical server takes the share", server: classicOnly,
			spec: func(s HelloSpec) HelloSpec {
				s.OfferOnly, s.Groups = []Group{GroupX25519MLKEM768}, []Group{GroupX25519}
				return s
			},
			shares: []Group{GroupX25519}, groups: []Group{GroupX25519MLKEM768, GroupX25519, GroupP256, GroupP384}, sni: "test.example",
			wantGroup: GroupX25519, wantRecord: 600},
		// Go 1.26's server prefers X25519MLKEM768 enough to ask for its
		// share with a HelloRetryRequest although an x25519 share came.
		{name: "PQ offered without share, Go's server wants PQ: retry", server: goDefault,
			spec: func(s HelloSpec) HelloSpec {
				s.OfferOnly, s.Groups = []Group{GroupX25519MLKEM768}, []Group{GroupX25519}
				return s
			},
			shares: []Group{GroupX25519}, groups: []Group{GroupX25519MLKEM768, GroupX25519, GroupP256, GroupP384}, sni: "test.example",
			wantGroup: GroupX25519MLKEM768, wantRetry: true, wantRecord: 600},
		{name: "no key shares at all: retry", server: goDefault,
			spec:   func(s HelloSpec) HelloSpec { s.NoKeyShares = true; return s },
			groups: classic, sni: "test.example", wantGroup: GroupX25519, wantRetry: true, wantRecord: 600},
		{name: "length window", spec: func(s HelloSpec) HelloSpec { s.Size = 400; return s }, server: goDefault,
			shares: []Group{GroupX25519, GroupP256}, groups: classic, sni: "test.example", wantGroup: GroupX25519, wantRecord: 400},
		{name: "two records", spec: func(s HelloSpec) HelloSpec { return s }, server: goDefault, split: 100,
			shares: []Group{GroupX25519, GroupP256}, groups: classic, sni: "test.example", wantGroup: GroupX25519, wantRecord: 605},
		{name: "post-quantum key share", server: goDefault,
			spec: func(s HelloSpec) HelloSpec {
				s.Groups, s.Size = []Group{GroupX25519MLKEM768, GroupX25519}, 0
				return s
			},
			shares: []Group{GroupX25519MLKEM768, GroupX25519}, groups: []Group{GroupX25519MLKEM768, GroupX25519, GroupP256, GroupP384},
			sni: "test.example", wantGroup: GroupX25519MLKEM768},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Build(tc.spec(base), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			record := h.Record
			if tc.split > 0 {
				if record, err = SplitRecord(h.Record, tc.split); err != nil {
					t.Fatal(err)
				}
				first, _ := ParseRecordHeader(record)
				second, _ := ParseRecordHeader(record[RecordHeaderLen+first.Length:])
				if first.Length != tc.split || first.Length+second.Length != len(h.Record)-RecordHeaderLen {
					t.Errorf("split records of %d and %d bytes", first.Length, second.Length)
				}
			}
			if tc.wantRecord > 0 && len(record) != tc.wantRecord {
				t.Errorf("record %d bytes, want %d", len(record), tc.wantRecord)
			}
			ch, err := ParseClientHello(h.Message())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ch.KeyShareGroups, tc.shares) || !slices.Equal(ch.Groups, tc.groups) || ch.ServerName != tc.sni {
				t.Errorf("parsed: shares %v groups %v sni %q; want %v %v %q", ch.KeyShareGroups, ch.Groups, ch.ServerName, tc.shares, tc.groups, tc.sni)
			}
			hasMLDSA := slices.Contains(ch.SignatureAlgorithms, 0x0904) && slices.Contains(ch.SignatureAlgorithms, 0x0905) &&
				slices.Contains(ch.SignatureAlgorithms, 0x0906)
			if hasMLDSA != tc.mldsa || len(ch.SignatureAlgorithms) != len(offeredSigAlgs)+map[bool]int{true: 3}[tc.mldsa] {
				t.Errorf("signature algorithms %04x, want ML-DSA %v", ch.SignatureAlgorithms, tc.mldsa)
			}
			f, last, err := exchangeRetry(t, tc.server, h, record)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if !f.Complete || f.ServerHello.Group != tc.wantGroup || (last.Retry != nil) != tc.wantRetry {
				t.Errorf("complete %v, group %v, retried %v; want group %v, retry %v", f.Complete, f.ServerHello.Group,
					last.Retry != nil, tc.wantGroup, tc.wantRetry)
			}
			if last.Retry != nil {
				ch2, err := ParseClientHello(last.Message())
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(ch2.KeyShareGroups, []Group{tc.wantGroup}) || string(ch2.SessionID) != string(h.SessionID) {
					t.Errorf("second hello: shares %v", ch2.KeyShareGroups)
				}
			}
		})
	}
}

func TestAnswerRetryRefuses(t *testing.T) {
	h, err := Build(HelloSpec{Groups: []Group{GroupX25519}}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hrr := func(g Group) []byte { return hrrMessage(g, nil) }
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"group not offered", hrr(0x0019)},
		{"group whose share was sent", hrr(GroupX25519)},
		{"truncated", hrr(GroupP256)[:20]},
	} {
		if _, err := h.AnswerRetry(tc.msg, rand.Reader); err == nil {
			t.Errorf("%s: answered", tc.name)
		}
	}
	second, err := h.AnswerRetry(hrr(GroupP256), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.AnswerRetry(hrr(GroupP384), rand.Reader); err == nil {
		t.Errorf("a second retry was answered")
	}
	if _, err := SplitRecord(h.Record, 0); err == nil {
		t.Errorf("split at 0 accepted")
	}
	if _, err := SplitRecord(h.Record[:40], 10); err == nil {
		t.Errorf("split of a cut record accepted")
	}
}

// hrrMessage is a HelloRetryRequest for group g, with cookie when set.
func hrrMessage(g Group, cookie []byte) []byte {
	body := []byte{3, 3}
	body = append(body, helloRetryRandom[:]...)
	body = append(body, 0, 0x13, 0x01, 0)
	ext := appendExt(nil, ExtSupportedVersions, []byte{3, 4})
	ext = appendExt(ext, ExtKeyShare, []byte{byte(g >> 8), byte(g)})
	if cookie != nil {
		ext = appendExt(ext, ExtCookie, appendVec16(nil, cookie))
	}
	body = appendVec16(body, ext)
	return append([]byte{TypeServerHello, 0, byte(len(body) >> 8), byte(len(body))}, body...)
}

// TestHelloRetryCookie: the cookie a HelloRetryRequest carries comes back
// in the second hello; an empty or cut cookie is refused.
func TestHelloRetryCookie(t *testing.T) {
	h, err := Build(HelloSpec{Groups: []Group{GroupX25519}}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.AnswerRetry(hrrMessage(GroupP256, []byte("state")), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ParseClientHello(second.Message())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ch.Extensions, func(e Extension) bool { return e.Type == ExtCookie && e.Length == 2+len("state") }) ||
		!slices.Equal(ch.KeyShareGroups, []Group{GroupP256}) {
		t.Errorf("second hello: extensions %v, shares %v", ch.Extensions, ch.KeyShareGroups)
	}
	if _, err := h.AnswerRetry(hrrMessage(GroupP256, []byte{}), rand.Reader); err == nil {
		t.Errorf("an empty cookie was echoed")
	}
	cut := hrrMessage(GroupP256, []byte("state"))
	if _, err := h.AnswerRetry(cut[:len(cut)-2], rand.Reader); err == nil {
		t.Errorf("a cut HelloRetryRequest was answered")
	}
}

func FuzzAnswerRetry(f *testing.F) {
	f.Add(hrrMessage(GroupP256, nil))
	f.Add(hrrMessage(GroupX25519MLKEM768, []byte("c")))
	f.Add([]byte{2, 0, 0, 0})
	h, err := Build(HelloSpec{ServerName: "a.example", OfferOnly: []Group{GroupX25519MLKEM768}, Groups: []Group{GroupX25519}}, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		second, err := h.AnswerRetry(msg, rand.Reader)
		if err != nil {
			return
		}
		ch, err := ParseClientHello(second.Message())
		if err != nil || len(ch.KeyShareGroups) != 1 || ch.KeyShareGroups[0] != second.Retry.Group {
			t.Fatalf("answer to %x: %v, shares %v", msg, err, ch)
		}
	})
}

func FuzzSplitRecord(f *testing.F) {
	f.Add(seedHello(f, 0), 100)
	f.Add([]byte{22, 3, 1, 0, 2, 1, 0}, 1)
	f.Fuzz(func(t *testing.T, rec []byte, at int) {
		out, err := SplitRecord(rec, at)
		if err != nil {
			return
		}
		a, _ := ParseRecordHeader(out)
		b, _ := ParseRecordHeader(out[RecordHeaderLen+a.Length:])
		msg := append(slices.Clone(out[RecordHeaderLen:RecordHeaderLen+a.Length]), out[2*RecordHeaderLen+a.Length:]...)
		if a.Length != at || a.Length+b.Length != len(rec)-RecordHeaderLen || string(msg) != string(rec[RecordHeaderLen:]) {
			t.Fatalf("split of %x at %d: %x", rec, at, out)
		}
	})
}
