package server

import "testing"

func synV4(opts ...byte) []byte {
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 51, 100, 2, 203, 0, 113, 10}
	off := (20 + len(opts) + 3) / 4 * 4
	tcp := make([]byte, off)
	tcp[12] = byte(off/4) << 4
	tcp[13] = 0x02
	copy(tcp[20:], opts)
	return append(ip, tcp...)
}

func TestSYNMSS(t *testing.T) {
	v6 := append([]byte{0x60, 0, 0, 0, 0, 40, 6, 64}, make([]byte, 32)...)
	v6 = append(v6, synV4(2, 4, 0x05, 0xa0)[20:]...)
	cases := []struct {
		name string
		b    []byte
		want int
		err  bool
	}{
		{"linux v4", synV4(2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7), 1460, false},
		{"nops first", synV4(1, 1, 2, 4, 0x05, 0x50), 1360, false},
		{"v6", v6, 1440, false},
		{"no mss", synV4(4, 2), 0, false},
		{"end of options", synV4(0, 2, 4, 5, 0), 0, false},
		{"mss option of the wrong length", synV4(2, 3, 5), 0, false}, // skipped, as the kernel does
		{"option past the end", synV4(8, 40), 0, true},
		{"zero-length option", synV4(3, 0), 0, true},
		{"empty", nil, 0, true},
		{"not tcp", func() []byte { b := synV4(); b[9] = 17; return b }(), 0, true},
		{"short ihl", []byte{0x41, 0, 0, 0}, 0, true},
		{"v5", []byte{0x50}, 0, true},
		{"data offset beyond", func() []byte { b := synV4(); b[20+12] = 0xf0; return b }(), 0, true},
		{"tcp header cut short", synV4(2, 4, 0x05, 0xb4)[:30], 0, true},
		{"v6 behind a hop-by-hop header", func() []byte {
			b := append([]byte{0x60, 0, 0, 0, 0, 32, 0, 64}, make([]byte, 32)...)
			b = append(b, 6, 0, 1, 4, 0, 0, 0, 0) // hop-by-hop: next TCP, a PadN option
			return append(b, synV4(2, 4, 0x05, 0x8c)[20:]...)
		}(), 1420, false},
	}
	for _, c := range cases {
		got, err := synMSS(c.b)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s: %d, %v; want %d (error %v)", c.name, got, err, c.want, c.err)
		}
	}
}

func FuzzSYNMSS(f *testing.F) {
	f.Add(synV4(2, 4, 0x05, 0xb4))
	f.Add(synV4(1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0))
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := synMSS(b); m < 0 || m > 65535 || (err != nil && m != 0) {
			t.Fatalf("synMSS = %d, %v", m, err)
		}
	})
}
