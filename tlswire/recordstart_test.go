package tlswire

import "testing"

// TestRecordStart is the one check of a record's start, on the inputs
// where the three checks it replaced disagreed (flow's hello check and
// analyze's took any length; ParseRecordHeader took any minor version).
func TestRecordStart(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    []byte
		ok    bool
		hello bool
	}{
		{"hello TLS 1.0 record", []byte{22, 3, 1, 0, 100, 1}, true, true},
		{"hello SSL 3.0", []byte{22, 3, 0, 0, 100, 1}, true, true},
		{"hello 3.4", []byte{22, 3, 4, 0, 100, 1}, true, true},
		{"handshake, not a hello", []byte{22, 3, 3, 0, 100, 2}, true, false},
		{"header only", []byte{22, 3, 1, 0, 100}, true, false},
		{"application data", []byte{23, 3, 3, 0x40, 0x00}, true, false},
		{"alert", []byte{21, 3, 3, 0, 2, 2, 40}, true, false},
		{"change cipher spec", []byte{20, 3, 3, 0, 1, 1}, true, false},
		{"longest record", []byte{23, 3, 3, MaxCiphertext >> 8, MaxCiphertext & 0xff}, true, false},
		{"one byte too long", []byte{22, 3, 1, (MaxCiphertext + 1) >> 8, (MaxCiphertext + 1) & 0xff, 1}, false, false},
		{"minor version 5", []byte{22, 3, 5, 0, 100, 1}, false, false},
		{"major version 2", []byte{22, 2, 0, 0, 100, 1}, false, false},
		{"type 19", []byte{19, 3, 3, 0, 1, 0}, false, false},
		{"type 24 (heartbeat)", []byte{24, 3, 3, 0, 1, 0}, false, false},
		{"HTTP", []byte("GET / HTTP/1.1"), false, false},
		{"short", []byte{22, 3, 1, 0}, false, false},
		{"empty", nil, false, false},
		{"SSLv2 hello, version 2.0", []byte{0x80, 0x2e, 1, 0, 2}, false, true},
		{"SSLv2 hello, version 3.1", []byte{0x80, 0x2e, 1, 3, 1}, false, true},
		{"SSLv2 hello, version 3.5", []byte{0x80, 0x2e, 1, 3, 5}, false, false},
		{"SSLv2 server hello", []byte{0x80, 0x2e, 4, 0, 2}, false, false},
	} {
		_, ok := RecordStart(c.in)
		if ok != c.ok {
			t.Errorf("%s: RecordStart %v, want %v", c.name, ok, c.ok)
		}
		if _, err := ParseRecordHeader(c.in); (err == nil) != c.ok {
			t.Errorf("%s: ParseRecordHeader error %v, want ok %v", c.name, err, c.ok)
		}
		if got := IsClientHelloStart(c.in); got != c.hello {
			t.Errorf("%s: IsClientHelloStart %v, want %v", c.name, got, c.hello)
		}
	}
}

func BenchmarkRecordStart(b *testing.B) {
	in := []byte{22, 3, 1, 2, 0, 1}
	for b.Loop() {
		if !IsClientHelloStart(in) {
			b.Fatal("no hello")
		}
	}
}
