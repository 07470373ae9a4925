//go:build linux

package probe_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// BenchmarkProbeS2 measures, in one run and on one S2 testbed (a 1400-byte
// link, no ICMP, fragments dropped), what a person has to find the path
// MTU, side by side for IPv4 and IPv6:
//
//   - mtuscope probe (the real binary against nginx, wall time of the
//     command), b.N runs per family, alternating families; every run must
//     give pmtud_blackhole and the exact 1400;
//   - tracepath, which learns only from ICMP and so reports 1500 here;
//   - a `ping -M do` bisection as a person would do it: one echo per size
//     with a one-second timeout (-W 1), from the floor (576-byte packets
//     for IPv4, 1280 for IPv6) to the interface MTU, halving the bracket.
//
// Run it as root with
//
//	go test -run '^$' -bench ProbeS2 -benchtime 9x ./probe/
func BenchmarkProbeS2(b *testing.B) {
	testnet.Require(b)
	testnet.RequireTools(b, "tracepath", "ping")
	n := testnet.New(b, testnet.Preset("S2"))
	n.StartNginx(b)
	bin := testnet.Mtuscope(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	b.StopTimer()
	// The testing package calls a benchmark once with b.N = 1 before the
	// real run: the other tools are measured once, on the first call.
	sides := slices.Clone(otherTools)
	for _, fam := range []int{4, 6} {
		if len(otherTools) > 0 {
			break
		}
		n.FlushPMTU(ctx)
		addr := n.Server.Addr(fam).String()
		tp := n.Client.Run(ctx, "tracepath", "-n", fmt.Sprintf("-%d", fam), "-m", "4", addr)
		mtu := 0
		if m := regexp.MustCompile(`pmtu (\d+)`).FindAllSubmatch(tp.Stdout, -1); len(m) > 0 {
			mtu, _ = strconv.Atoi(string(m[len(m)-1][1]))
		}
		sides = append(sides, side{"tracepath -m 4", fam, tp.Duration, mtu, "from ICMP only"})
		n.FlushPMTU(ctx)
		took, mtu, steps := pingBisect(ctx, n, fam)
		sides = append(sides, side{"ping -M do bisection", fam, took, mtu, fmt.Sprintf("%d pings, 1 s timeout", steps)})
		if fam == 6 {
			otherTools = slices.Clone(sides)
		}
	}

	var runs [2][]time.Duration
	b.StartTimer()
	for i := 0; i < b.N; i++ {
		for fi, fam := range []int{4, 6} {
			b.StopTimer()
			if err := n.FlushPMTU(ctx); err != nil {
				b.Fatal(err)
			}
			addr := n.Server.Addr(fam).String()
			if fam == 6 {
				addr = "[" + addr + "]"
			}
			b.StartTimer()
			res := n.Client.Run(ctx, bin, "probe", "--json", fmt.Sprintf("-%d", fam), "--sni", testnet.ServerName, addr)
			b.StopTimer()
			var doc probeDoc
			if err := json.Unmarshal(res.Stdout, &doc); err != nil {
				b.Fatalf("not JSON: %v\n%s", err, res)
			}
			if doc.Verdict != "pmtud_blackhole" || doc.PathMTU != 1400 {
				b.Fatalf("IPv%d run %d: %s %d, want pmtud_blackhole 1400", fam, i, doc.Verdict, doc.PathMTU)
			}
			runs[fi] = append(runs[fi], res.Duration)
			if res.Duration > 2*time.Second {
				fmt.Printf("slow run: IPv%d run %d took %v: %s\n", fam, i+1, res.Duration.Round(time.Millisecond), slowTests(doc))
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	for fi, fam := range []int{4, 6} {
		d := slices.Clone(runs[fi])
		slices.Sort(d)
		med := d[len(d)/2]
		sides = append(sides, side{"mtuscope probe", fam, med, 1400,
			fmt.Sprintf("median of %d, min %.2f s, max %.2f s", len(d), d[0].Seconds(), d[len(d)-1].Seconds())})
		b.ReportMetric(med.Seconds(), fmt.Sprintf("probe_v%d_median_s", fam))
		b.ReportMetric(d[len(d)-1].Seconds(), fmt.Sprintf("probe_v%d_max_s", fam))
	}
	for _, s := range sides {
		if s.tool != "mtuscope probe" {
			b.ReportMetric(s.took.Seconds(), fmt.Sprintf("%s_v%d_s", map[string]string{"tracepath -m 4": "tracepath", "ping -M do bisection": "pingbisect"}[s.tool], s.family))
		}
	}
	// On standard output: the testing package truncates a benchmark's log.
	fmt.Printf("BenchmarkProbeS2, b.N=%d: S2, path MTU 1400 both ways (load average %s)\n", b.N, loadAvg())
	for _, s := range sides {
		fmt.Printf("  %-22s IPv%d  %6.2f s  path MTU %4d  (%s)\n", s.tool, s.family, s.took.Seconds(), s.mtu, s.pathNote)
	}
}

// side is one tool's result in BenchmarkProbeS2.
type side struct {
	tool     string
	family   int
	took     time.Duration
	mtu      int
	pathNote string
}

// otherTools keeps the tracepath and ping results of BenchmarkProbeS2's
// first call.
var otherTools []side

// pingBisect finds the largest IP packet that passes with Don't Fragment
// the way a person would with ping: the floor is known to pass, try the
// interface MTU, then halve the bracket; one echo per try, one second to
// answer. It returns the time taken, the path MTU found and the pings sent.
func pingBisect(ctx context.Context, n *testnet.Net, fam int) (time.Duration, int, int) {
	hdr, lo, hi := 28, 576, 1500 // IP packet sizes: lo passes, hi untested
	if fam == 6 {
		hdr, lo = 48, 1280
	}
	addr := n.Server.Addr(fam).String()
	start := time.Now()
	steps := 0
	ping := func(size int) bool {
		steps++
		r := n.Client.Run(ctx, "ping", fmt.Sprintf("-%d", fam), "-n", "-c", "1", "-W", "1", "-M", "do", "-s", strconv.Itoa(size-hdr), addr)
		return r.ExitCode == 0
	}
	if ping(hi) {
		return time.Since(start), hi, steps
	}
	for hi-lo > 1 { // lo passes, hi fails
		mid := (lo + hi) / 2
		if ping(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return time.Since(start), lo, steps
}

// slowTests names the tests of a run that took more than a second.
func slowTests(doc probeDoc) string {
	var out []string
	for _, raw := range doc.Tests {
		var tt struct {
			Name   string         `json:"name"`
			Params map[string]any `json:"params"`
			Result map[string]any `json:"result"`
			MS     float64        `json:"duration_ms"`
		}
		if json.Unmarshal(raw, &tt) == nil && tt.MS > 1000 {
			out = append(out, fmt.Sprintf("%s %v %.0f ms (retried %v, copies %v)", tt.Name, tt.Params, tt.MS, tt.Result["retried"], tt.Result["copies"]))
		}
	}
	if len(out) > 6 {
		out = append(out[:6], fmt.Sprintf("and %d more", len(out)-6))
	}
	return strings.Join(out, "; ")
}

// loadAvg is the first field of /proc/loadavg, for the benchmark's log:
// the machine is shared, and its figures are only as good as its load.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
