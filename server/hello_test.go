package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/tlswire"
)

func buildHello(t testing.TB, size int) []byte {
	t.Helper()
	return buildHelloSID(t, size).Record
}

func buildHelloSID(t testing.TB, size int) *tlswire.Hello {
	t.Helper()
	h, err := tlswire.Build(tlswire.HelloSpec{ServerName: "server.mtuscope.test", Size: size}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHelloSnifferWholeAndSplit(t *testing.T) {
	built := buildHelloSID(t, 1500)
	rec := built.Record
	sid := hex.EncodeToString(built.SessionID)
	sum := sha256.Sum256(rec[5:])
	want := hex.EncodeToString(sum[:])
	for _, chunk := range []int{1, 3, 5, 7, 100, 1400, len(rec)} {
		var h helloSniffer
		for i := 0; i < len(rec); i += chunk {
			h.Feed(rec[i:min(i+chunk, len(rec))])
		}
		if !h.Complete() || h.Hash != want || h.Expected != len(rec)-5 || h.Records != len(rec) || h.SessionID != sid {
			t.Errorf("chunk %d: complete=%v expected=%d records=%d session %q, want %q",
				chunk, h.Complete(), h.Expected, h.Records, h.SessionID, sid)
		}
	}
	// Only the first segment's worth: partial, not complete.
	var h helloSniffer
	h.Feed(rec[:1000])
	if h.Complete() || h.Done || h.Got() != 995 || h.Expected != len(rec)-5 {
		t.Errorf("partial: complete=%v got=%d expected=%d", h.Complete(), h.Got(), h.Expected)
	}
}

func TestHelloSnifferHelloAcrossRecords(t *testing.T) {
	rec := buildHello(t, 600)
	msg := rec[5:]
	// Re-frame the message into two records of 300 and the rest.
	var b []byte
	for _, part := range [][]byte{msg[:300], msg[300:]} {
		b = append(b, 22, 3, 1, byte(len(part)>>8), byte(len(part)))
		b = append(b, part...)
	}
	var h helloSniffer
	h.Feed(b)
	if !h.Complete() || h.Expected != len(msg) || h.Records != len(b) {
		t.Errorf("two records: complete=%v expected=%d records=%d", h.Complete(), h.Expected, h.Records)
	}
}

// crafted inputs that must not panic and must not claim a complete hello.
var craftedHellos = map[string][]byte{
	"empty":           {},
	"http":            []byte("GET / HTTP/1.1\r\n\r\n"),
	"alert record":    {21, 3, 3, 0, 2, 2, 40},
	"zero length":     {22, 3, 1, 0, 0},
	"huge record":     {22, 3, 1, 0xff, 0xff, 1},
	"not clienthello": {22, 3, 1, 0, 4, 2, 0, 0, 0},
	"huge message":    {22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff},
	"truncated":       {22, 3, 1, 0, 40, 1, 0, 0, 36, 3, 3},
	"header only":     {22, 3, 1},
}

func TestHelloSnifferCrafted(t *testing.T) {
	for name, b := range craftedHellos {
		var h helloSniffer
		h.Feed(b)
		h.Feed(b)
		if h.Complete() {
			t.Errorf("%s: claimed a complete hello", name)
		}
	}
}

func FuzzHelloSniffer(f *testing.F) {
	for _, b := range craftedHellos {
		f.Add(b, 3)
	}
	f.Add(buildHello(f, 700), 100)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		var whole, split helloSniffer
		whole.Feed(b)
		for i := 0; i < len(b); i += chunk {
			split.Feed(b[i:min(i+chunk, len(b))])
		}
		if whole.Hash != split.Hash || whole.Got() != split.Got() || whole.NotTLS != split.NotTLS {
			t.Fatalf("chunking changed the result: %+v vs %+v", whole, split)
		}
		if whole.Got() > maxHelloCapture {
			t.Fatalf("kept %d bytes", whole.Got())
		}
	})
}

// TestHelloSnifferFeatures: what a hello carried is read when it is whole,
// and from the part that arrived when the connection ends before; a
// server name (the client's choice, shown in reports) is kept to 253 bytes.
func TestHelloSnifferFeatures(t *testing.T) {
	pq, err := tlswire.Build(tlswire.HelloSpec{ServerName: "server.mtuscope.test",
		Groups: []tlswire.Group{tlswire.GroupX25519MLKEM768, tlswire.GroupX25519}, MLDSA: true}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var whole helloSniffer
	whole.Feed(pq.Record)
	if f := whole.Features; !whole.Complete() || f.PQKeyShare != tlswire.Present || f.MLDSA != tlswire.Present ||
		f.ServerName != "server.mtuscope.test" || f.Size != len(pq.Record)-5 {
		t.Errorf("whole hello: %+v", f)
	}
	var part helloSniffer
	part.Feed(pq.Record[:len(pq.Record)-300]) // the last segment reset away
	if part.Features.Size != 0 {
		t.Errorf("features read before the connection ended: %+v", part.Features)
	}
	part.Release()
	if f := part.Features; f.PQKeyShare != tlswire.Present || f.Read != len(pq.Record)-305 || f.Size != len(pq.Record)-5 {
		t.Errorf("first part of the hello, at its end: %+v", f)
	}
	long, err := tlswire.Build(tlswire.HelloSpec{ServerName: strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." +
		strings.Repeat("c", 63) + "." + strings.Repeat("d", 63)}, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var ls helloSniffer
	ls.Feed(long.Record)
	if n := len(ls.Features.ServerName); n != 253 {
		t.Errorf("a 255-byte server name kept as %d bytes, want 253", n)
	}
}
