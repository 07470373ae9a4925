package cli

import (
	"io"
	"os"
	"testing"
)

// BenchmarkAnalyze runs `mtuscope analyze` (text and --json) as the
// command line does, on MTUSCOPE_BENCH_PCAP (skipped when unset), for
// profiling:
//
//	MTUSCOPE_BENCH_PCAP=/work/bench/handshakes.pcap go test ./internal/cli/ \
//	    -run '^$' -bench BenchmarkAnalyze -cpuprofile cpu.out
func BenchmarkAnalyze(b *testing.B) {
	path := os.Getenv("MTUSCOPE_BENCH_PCAP")
	if path == "" {
		b.Skip("set MTUSCOPE_BENCH_PCAP to a capture")
	}
	for _, c := range []struct {
		name string
		args []string
	}{{"text", []string{"analyze", path}}, {"json", []string{"analyze", "--json", path}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if code := Run(c.args, io.Discard, io.Discard); code > ExitProblem {
					b.Fatalf("exit %d", code)
				}
			}
		})
	}
}
