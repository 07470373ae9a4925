package echowire

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tok := []byte("0123456789abcdef0123456789abcdef")
	for _, size := range []int{38, 100, 1472, 2000, 8000} {
		for _, flags := range []byte{0, FlagEcho} {
			req, err := AppendRequest(nil, flags, tok, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(req) != size {
				t.Fatalf("request of %d bytes, want %d", len(req), size)
			}
			p, err := ParseRequest(req)
			if err != nil || !bytes.Equal(p.Token, tok) || p.Flags != flags || p.Size != size {
				t.Fatalf("parse request: %+v %v", p, err)
			}
			rep := AppendReply(nil, req, p)
			if len(rep) > len(req) {
				t.Fatalf("reply %d > request %d", len(rep), len(req))
			}
			if flags&FlagEcho != 0 && len(rep) != len(req) || flags == 0 && len(rep) != ReplyHeaderLen {
				t.Fatalf("size %d flags %d: reply of %d bytes", size, flags, len(rep))
			}
			r, err := ParseReply(rep)
			if err != nil || r.RequestSize != size {
				t.Fatalf("parse reply: %+v %v", r, err)
			}
		}
	}
	if _, err := AppendRequest(nil, 0, tok, 10); err == nil {
		t.Error("request smaller than its header built")
	}
	if _, err := AppendRequest(nil, 0, make([]byte, 65), 200); err == nil {
		t.Error("overlong token accepted")
	}
}

var crafted = map[string][]byte{
	"empty":        {},
	"magic only":   []byte("MTQ1"),
	"token beyond": []byte("MTQ1\x00\x40abc"),
	"wrong magic":  []byte("XXXX\x00\x00"),
	"reply short":  []byte("MTR1\x00"),
}

func TestCrafted(t *testing.T) {
	for name, d := range crafted {
		if _, err := ParseRequest(d); err == nil {
			t.Errorf("%s: parsed as a request", name)
		}
		if _, err := ParseReply(d); err == nil {
			t.Errorf("%s: parsed as a reply", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, d := range crafted {
		f.Add(d)
	}
	ok, _ := AppendRequest(nil, FlagEcho, []byte("tok"), 64)
	f.Add(ok)
	f.Fuzz(func(t *testing.T, d []byte) {
		if req, err := ParseRequest(d); err == nil {
			if rep := AppendReply(nil, d, req); len(rep) > len(d) {
				t.Fatalf("reply of %d bytes to a request of %d", len(rep), len(d))
			}
		}
		ParseReply(d)
	})
}
