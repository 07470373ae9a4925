package tlswire

import "testing"

// BenchmarkScanClientHello times the monitor's per-connection read of a
// whole post-quantum hello (Go 1.26's 1,503 bytes) and of its first
// segment, as a device that drops the second leaves it.
func BenchmarkScanClientHello(b *testing.B) {
	msg := buildMsg(b, HelloSpec{ServerName: "a.example", Groups: []Group{GroupX25519MLKEM768, GroupX25519}, Size: 1503})
	var s HelloSummary
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if ScanClientHello(msg, &s) != nil {
				b.Fatal("scan failed")
			}
		}
	})
	b.Run("first_segment", func(b *testing.B) {
		for b.Loop() {
			if ScanClientHelloPrefix(msg[:1443], &s) != nil {
				b.Fatal("scan failed")
			}
		}
	})
}
