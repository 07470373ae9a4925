package analyze_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// TestBenchVsTshark compares mtuscope analyze with tshark on the same
// captures, side by side in one run: packets per second and peak RSS
// (from /usr/bin/time -v). It runs only when asked:
//
//	MTUSCOPE_BENCH=1 go test ./analyze/ -run TestBenchVsTshark -v
//
// MTUSCOPE_BENCH_PCAP names the one-capture file (at least 300,000
// packets; default /work/bench/handshakes.pcap). For the two-capture
// comparison, a client-side and a server-side capture of real handshakes
// are made in the testbed (root; kept in MTUSCOPE_BENCH_DIR when set),
// unless MTUSCOPE_BENCH_CLIENT and MTUSCOPE_BENCH_SERVER name them.
func TestBenchVsTshark(t *testing.T) {
	if os.Getenv("MTUSCOPE_BENCH") == "" {
		t.Skip("benchmark: set MTUSCOPE_BENCH=1 to run it")
	}
	for _, tool := range []string{"tshark", "mergecap", "capinfos", "/usr/bin/time"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("benchmark needs %s", tool)
		}
	}
	bin := testnet.Mtuscope(t)
	single := os.Getenv("MTUSCOPE_BENCH_PCAP")
	if single == "" {
		single = "/work/bench/handshakes.pcap"
	}
	if _, err := os.Stat(single); err != nil {
		t.Fatalf("one-capture benchmark file: %v", err)
	}
	n := packetCount(t, single)
	t.Logf("one capture: %s, %d packets", single, n)
	a := timed(t, bin, "analyze", single)
	aj := timed(t, bin, "analyze", "--json", single)
	ts := timed(t, "sh", "-c", "tshark -r "+single+` -n -d 'tcp.port==443,tls' -Y 'tls || (tcp.flags.syn==1 && tcp.flags.ack==0)' -T fields -E separator=/t -E occurrence=a -E aggregator=, -e tcp.stream -e ip.src -e tcp.srcport -e tls.handshake.type -e tls.record.content_type -e tls.record.opaque_type -e tls.alert_message.desc | awk -F'\t' '$4 ~ /1/ {h[$1]=1} $4 ~ /2/ {s[$1]=1} END {for (k in h) n++; for (k in s) m++; print n, m}'`)
	report(t, "one capture: handshakes classified (analyze's text report: outcome counts, verdict, lost packets, ladders)", n, a, ts)
	report(t, "one capture, analyze --json (every handshake listed)", n, aj, ts)

	cpath, spath := os.Getenv("MTUSCOPE_BENCH_CLIENT"), os.Getenv("MTUSCOPE_BENCH_SERVER")
	if cpath == "" || spath == "" {
		cpath, spath = makeBenchPair(t)
	}
	cn, sn := packetCount(t, cpath), packetCount(t, spath)
	t.Logf("two captures: %s (%d packets) and %s (%d packets)", cpath, cn, spath, sn)
	pa := timed(t, bin, "analyze", "--client", cpath, "--server", spath)
	merged := filepath.Join(t.TempDir(), "merged.pcap")
	mc := timed(t, "mergecap", "-F", "pcap", "-w", merged, cpath, spath)
	tc := timed(t, "tshark", "-q", "-n", "-r", merged, "-z", "compare,0,0")
	tc.elapsed += mc.elapsed
	tc.cpu += mc.cpu
	tc.rss = max(tc.rss, mc.rss)
	report(t, "two captures: mtuscope pairing vs mergecap + tshark -z compare", cn+sn, pa, tc)
}

type run struct {
	elapsed time.Duration
	cpu     time.Duration // user plus system
	rss     int64         // KiB
	out     string
}

var (
	rssRe  = regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`)
	userRe = regexp.MustCompile(`User time \(seconds\): ([0-9.]+)`)
	sysRe  = regexp.MustCompile(`System time \(seconds\): ([0-9.]+)`)
)

// timed runs a command three times and keeps the fastest run (page cache
// warm, least disturbed by the other work on the machine).
func timed(t *testing.T, name string, args ...string) run {
	t.Helper()
	best := timedOnce(t, name, args...)
	for range 2 {
		if r := timedOnce(t, name, args...); r.elapsed < best.elapsed {
			best = r
		}
	}
	return best
}

func timedOnce(t *testing.T, name string, args ...string) run {
	t.Helper()
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", name}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	el := time.Since(start)
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() == 2) { // 2: could not run
		t.Fatalf("%s %v: %v: %s", name, args, err, errb.String())
	}
	r := run{elapsed: el, out: out.String()}
	if m := rssRe.FindStringSubmatch(errb.String()); m != nil {
		r.rss, _ = strconv.ParseInt(m[1], 10, 64)
	}
	for _, re := range []*regexp.Regexp{userRe, sysRe} {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			sec, _ := strconv.ParseFloat(m[1], 64)
			r.cpu += time.Duration(sec * float64(time.Second))
		}
	}
	return r
}

func packetCount(t *testing.T, path string) int {
	out, err := exec.Command("capinfos", "-M", "-c", path).CombinedOutput()
	if err != nil {
		t.Fatalf("capinfos %s: %v: %s", path, err, out)
	}
	m := regexp.MustCompile(`Number of packets:\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("capinfos %s: %s", path, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func report(t *testing.T, what string, packets int, ours, theirs run) {
	pps := func(d time.Duration) float64 { return float64(packets) / d.Seconds() }
	t.Logf("%s, %d packets (wall clock on a shared machine; CPU is user plus system time):\n"+
		"  mtuscope analyze  wall %6.2f s %10.0f packets/s   CPU %6.2f s %10.0f packets/s   peak RSS %5d MiB\n"+
		"  tshark            wall %6.2f s %10.0f packets/s   CPU %6.2f s %10.0f packets/s   peak RSS %5d MiB\n"+
		"  ratio             %.1fx tshark's rate (wall), %.1fx (CPU)",
		what, packets, ours.elapsed.Seconds(), pps(ours.elapsed), ours.cpu.Seconds(), pps(ours.cpu), ours.rss>>10,
		theirs.elapsed.Seconds(), pps(theirs.elapsed), theirs.cpu.Seconds(), pps(theirs.cpu), theirs.rss>>10,
		pps(ours.elapsed)/pps(theirs.elapsed), pps(ours.cpu)/pps(theirs.cpu))
}

// makeBenchPair captures real handshakes at both ends of a clean testbed
// path: Go TLS clients, many at once, against nginx, for about 20,000
// handshakes.
func makeBenchPair(t *testing.T) (string, string) {
	testnet.Require(t)
	n := testnet.New(t, testnet.Preset("S1"))
	ng := n.StartNginx(t)
	dir := os.Getenv("MTUSCOPE_BENCH_DIR") // to keep the pair for later runs
	if dir == "" {
		dir = t.TempDir()
	}
	cpath, spath := filepath.Join(dir, "bench-client.pcap"), filepath.Join(dir, "bench-server.pcap")
	cc, err := n.Client.Capture("eth0", cpath, "-s", "0", captureFilter)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := n.Server.Capture("br0", spath, "-s", "0", captureFilter)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ng.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientSessionCache = nil
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dial := n.Client.Dialer(&net.Dialer{})
	const total, workers = 20000, 32
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= total && ctx.Err() == nil {
				c, err := dial(ctx, "tcp", ng.Addr(n.Server.V4))
				if err != nil {
					continue
				}
				tc := tls.Client(c, cfg.Clone())
				hctx, hc := context.WithTimeout(ctx, 3*time.Second)
				if tc.HandshakeContext(hctx) == nil {
					ok.Add(1)
				}
				hc()
				tc.Close()
			}
		})
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	if _, err := cc.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("bench pair: %d of %d handshakes completed", ok.Load(), total)
	if ok.Load() < total/2 {
		t.Fatal(fmt.Errorf("bench pair: only %d handshakes", ok.Load()))
	}
	return cpath, spath
}
