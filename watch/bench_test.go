package watch_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// benchCapture is the capture the side-by-side benchmark replays:
// $MTUSCOPE_BENCH_PCAP, else the shared one cmd/mtuscope-capgen made in
// the testbed.
func benchCapture(b *testing.B) string {
	f := os.Getenv("MTUSCOPE_BENCH_PCAP")
	if f == "" {
		f = "/work/bench/handshakes.pcap"
	}
	if _, err := os.Stat(f); err != nil {
		b.Skipf("no capture to replay (set MTUSCOPE_BENCH_PCAP; go run ./cmd/mtuscope-capgen makes one): %v", err)
	}
	return f
}

// runTimed runs a command b.N times and reports packets per second (of a
// capture of n packets) and the command's peak RSS.
func runTimed(b *testing.B, n int, name string, args ...string) {
	b.Helper()
	var rss int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(name, args...)
		cmd.Stdout = nil
		if out, err := cmd.CombinedOutput(); err != nil {
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				b.Fatalf("%s: %v\n%s", name, err, out)
			}
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, ru.Maxrss)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(rss)/1024, "peak_RSS_MiB")
}

// capturePackets counts the capture's packets with watch itself.
func capturePackets(b *testing.B, bin, file string) int {
	out, err := exec.Command(bin, "watch", "--read", file, "--json", "--admin", "").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			b.Fatalf("watch --read: %v", err)
		}
	}
	i := strings.Index(string(out), `"packets": `)
	if i < 0 {
		b.Fatalf("no packet count in %s", out)
	}
	rest := string(out[i+len(`"packets": `):])
	n, err := strconv.Atoi(rest[:strings.IndexAny(rest, ",\n")])
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkWatchRead times `mtuscope watch --read` on a real capture of
// testbed handshakes, the whole command (decoder, flow model, monitor,
// summary). Run it beside BenchmarkTshark in one go:
//
//	go test -run X -bench 'WatchRead|Tshark' -benchtime 1x ./watch
func BenchmarkWatchRead(b *testing.B) {
	file := benchCapture(b)
	bin := testnet.Mtuscope(b)
	n := capturePackets(b, bin, file)
	start := time.Now()
	runTimed(b, n, bin, "watch", "--read", file, "--admin", "")
	b.Logf("%d packets, %d runs in %s", n, b.N, time.Since(start).Round(time.Millisecond))
}

// BenchmarkTshark times tshark's per-connection handshake classification
// of the same capture (the command in docs/facts.md: the TLS handshake fields of
// every connection, which a little awk turns into outcomes).
func BenchmarkTshark(b *testing.B) {
	file := benchCapture(b)
	if _, err := exec.LookPath("tshark"); err != nil {
		b.Skip("no tshark (apt-get install tshark)")
	}
	n := capturePackets(b, testnet.Mtuscope(b), file)
	runTimed(b, n, "tshark", "-r", file, "-n", "-d", "tcp.port==443,tls",
		"-Y", "tls || (tcp.flags.syn==1 && tcp.flags.ack==0)", "-T", "fields", "-E", "separator=/t",
		"-E", "occurrence=a", "-E", "aggregator=,", "-e", "tcp.stream", "-e", "ip.src", "-e", "tcp.srcport",
		"-e", "tls.handshake.type", "-e", "tls.record.content_type", "-e", "tls.record.opaque_type",
		"-e", "tls.alert_message.desc")
}
