package analyze_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/analyze"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/findingtest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// captureFilter is what the README and docs/analyze.md tell people to capture at each end.
const captureFilter = "tcp port 443 or icmp or icmp6"

// e2eCase is one scenario captured at both ends.
type e2eCase struct {
	preset string
	family int
	nat    bool
	limit  int // the path's size limit: every packet lost without explanation is larger
}

// TestAnalyzeScenarios captures real clients (curl, Go's TLS client with
// its post-quantum hello, and a Go client with a lowered MSS, as an MSS
// clamp would make it) against nginx at both ends at once, then runs the
// real binary on the pair and on each side alone.
func TestAnalyzeScenarios(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "tcpdump", "curl", "nginx")
	bin := testnet.Mtuscope(t)
	cases := []e2eCase{
		{preset: "S1", family: 4, limit: 1500},
		{preset: "S2", family: 4, limit: 1400},
		{preset: "S3", family: 4, limit: 1400},
		{preset: "S7", family: 4, limit: 1400},
		{preset: "S8", family: 4, limit: 1400},
		{preset: "S6", family: 6, limit: 1280},
		{preset: "S2", family: 4, nat: true, limit: 1400},
	}
	for _, c := range cases {
		name := c.preset
		if c.nat {
			name += "-nat"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, bin, c)
		})
	}
}

func runScenario(t *testing.T, bin string, c e2eCase) {
	sc := testnet.Preset(c.preset)
	n := testnet.New(t, sc)
	ng := n.StartNginx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if c.nat {
		if err := n.Masquerade(ctx, 0); err != nil {
			t.Fatal(err)
		}
	}
	base := "analyze-" + c.preset
	if c.nat {
		base += "-nat"
	}
	cpath, spath := captureBoth(t, n, base, func() { makeTraffic(t, ctx, n, ng, c) })
	want := sc.Want
	name := c.preset
	if c.nat {
		name += "-nat"
	}
	var svg string
	if c.preset == "S2" && !c.nat {
		svg = filepath.Join(artifactDir(t), "analyze-S2-pair.svg")
	}
	pair := runAnalyze(t, bin, svg, "--client", cpath, "--server", spath)
	client := runAnalyze(t, bin, "", cpath)
	server := runAnalyze(t, bin, "", spath)
	for _, x := range []struct {
		side string
		r    *analyze.Result
	}{{"pair", pair}, {"client", client}, {"server", server}} {
		t.Run(x.side, func(t *testing.T) { checkResult(t, name+" "+x.side, x.r, want, c) })
	}
	analyze.AgreeWithWatch(t, name+" client", cpath, client)
	analyze.AgreeWithWatch(t, name+" server", spath, server)
	if *pair.MatchedFlows < 4 {
		t.Errorf("pair: %d flows matched, want the 4 or more the clients opened (matching %+v)", *pair.MatchedFlows, pair.Matching)
	}
	if pair.Matching.UnmatchedClient > 0 || pair.Matching.UnmatchedServer > 0 {
		t.Errorf("pair: unmatched flows: %+v", pair.Matching)
	}
	if c.nat && (pair.Matching.AddressRewritten == 0 || pair.Matching.PortRewritten == 0) {
		t.Errorf("pair behind NAT: matching %+v, want addresses and ports rewritten", pair.Matching)
	}
	if !c.nat && (pair.Matching.AddressRewritten != 0 || pair.Matching.SequenceShifted != 0) {
		t.Errorf("pair without NAT: matching %+v", pair.Matching)
	}
	if c.preset == "S3" {
		for _, x := range []*analyze.Result{pair, client, server} {
			if x.ICMPTooBig == 0 {
				t.Errorf("S3 %s: no ICMP too-big counted", x.Mode)
			}
		}
		if pair.Upstream.TooBigReachedSender == 0 || pair.Downstream.TooBigReachedSender == 0 {
			t.Errorf("S3 pair: ICMP too-big at the sender: up %d down %d, want both", pair.Upstream.TooBigReachedSender, pair.Downstream.TooBigReachedSender)
		}
	}
	if svg != "" {
		if st, err := os.Stat(svg); err != nil || st.Size() < 1000 {
			t.Errorf("S2 pair SVG %s: %v", svg, err)
		} else {
			t.Logf("S2 pair ladder diagram: %s", svg)
			svgToPNG(t, svg)
		}
	}
}

// checkResult asserts on one analysis: the scenario's verdict and
// direction, a path-MTU bracket that holds the real limit, and lost
// packets in the right direction, each lost without explanation larger
// than the limit.
func checkResult(t *testing.T, what string, r *analyze.Result, want testnet.Want, c e2eCase) {
	if string(r.Verdict) != want.Verdict || string(r.Direction) != want.Direction {
		t.Errorf("%s: verdict %s direction %s, want %s %s\nfindings: %+v\nup %+v\ndown %+v\noutcomes %v",
			what, r.Verdict, r.Direction, want.Verdict, want.Direction, r.Findings, r.Upstream, r.Downstream, r.Outcomes)
	}
	for _, f := range r.Findings {
		for _, p := range findingtest.Problems(f) {
			t.Errorf("%s: %s", what, p)
		}
	}
	if r.Family != c.family {
		t.Errorf("%s: family %d, want %d", what, r.Family, c.family)
	}
	// The path MTU, or when the captures only bracket it widely (no
	// packet between the sizes delivered and lost), the bracket alone.
	b := r.PathMTURange
	wide := r.PathMTU == 0 && b.Delivered > 0 && b.Lost-b.Delivered > 100
	if (r.PathMTU == 0 && !wide) || r.PathMTU > c.limit || b.Delivered > c.limit || (b.Lost != 0 && b.Lost <= c.limit) {
		t.Errorf("%s: path MTU %d, bracket %+v does not hold the real limit %d", what, r.PathMTU, b, c.limit)
	}
	dirs := map[diagnose.Direction]bool{}
	for _, l := range r.Lost {
		if !l.ICMPSignalled && !l.RecoveredSmaller && !l.WithLarger {
			dirs[l.Direction] = true
			if l.IPSize <= c.limit {
				t.Errorf("%s: lost %+v is not above the limit %d", what, l, c.limit)
			}
		}
	}
	switch want.Direction {
	case "both":
		if !dirs[diagnose.Upstream] || !dirs[diagnose.Downstream] {
			t.Errorf("%s: lost packets in %v, want both directions", what, dirs)
		}
	case "upstream", "downstream":
		if !dirs[diagnose.Direction(want.Direction)] || len(dirs) != 1 {
			t.Errorf("%s: lost packets in %v, want %s only", what, dirs, want.Direction)
		}
	case "none":
		if len(dirs) != 0 {
			t.Errorf("%s: unexplained losses %v in a scenario without any", what, r.Lost)
		}
	}
	if len(r.Handshakes) < 4 {
		t.Errorf("%s: %d handshakes listed, want 4 or more", what, len(r.Handshakes))
	}
	// The outcomes of the story: the large hello stalls going up, the
	// server's flight coming down; the clamped client always completes.
	outcomes := map[diagnose.Outcome]bool{diagnose.Completed: true}
	switch want.Direction {
	case "both":
		outcomes[diagnose.StalledClientHello], outcomes[diagnose.StalledServerFlight] = true, true
	case "upstream":
		outcomes[diagnose.StalledClientHello] = true
	case "downstream":
		outcomes[diagnose.StalledServerFlight] = true
	}
	for o := range outcomes {
		if r.Outcomes[o] == 0 {
			t.Errorf("%s: outcomes %v, want some %s", what, r.Outcomes, o)
		}
	}
	for o, n := range r.Outcomes {
		if !outcomes[o] {
			// A packet the capture itself missed (tcpdump on a loaded
			// machine) can make one handshake look odd; the verdict must
			// not change for it.
			t.Logf("%s: %d %s handshakes besides %v", what, n, o, outcomes)
		}
	}
}

// captureBoth captures at the client (eth0) and the server (br0) while
// traffic runs, into BASE-client.pcap and BASE-server.pcap, kept with the
// test artifacts when there is a place for them, and returns their paths.
func captureBoth(t *testing.T, n *testnet.Net, base string, traffic func()) (cpath, spath string) {
	t.Helper()
	dir := artifactDir(t)
	cpath, spath = filepath.Join(dir, base+"-client.pcap"), filepath.Join(dir, base+"-server.pcap")
	cc, err := n.Client.Capture("eth0", cpath, captureFilter)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := n.Server.Capture("br0", spath, captureFilter)
	if err != nil {
		cc.Stop()
		t.Fatal(err)
	}
	traffic()
	if _, err := cc.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Stop(); err != nil {
		t.Fatal(err)
	}
	return cpath, spath
}

func runAnalyze(t *testing.T, bin, svg string, args ...string) *analyze.Result {
	t.Helper()
	full := append([]string{"analyze", "--json"}, args...)
	if svg != "" {
		full = append(full, "--svg", svg)
	}
	cmd := exec.Command(bin, full...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() == 2) { // 2: could not run
		t.Fatalf("mtuscope %s: %v: %s", strings.Join(full, " "), err, stderr.String())
	}
	var r analyze.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("mtuscope %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	code := 0
	if err != nil {
		code = 1
	}
	if want := map[bool]int{true: 1, false: 0}[r.Verdict.Problem()]; code != want {
		t.Errorf("mtuscope %s: exit status %d for verdict %s", strings.Join(full, " "), code, r.Verdict)
	}
	return &r
}

func artifactDir(t *testing.T) string {
	d := os.Getenv("MTUSCOPE_ARTIFACTS")
	if d == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// makeTraffic runs the clients at once: curl twice (a small ClientHello:
// tests the server's flight), Go's TLS client with its default 1.5 KB
// post-quantum hello (tests upstream), and a Go client whose MSS makes
// packets exactly as large as the path allows (its handshake completes
// and shows which size gets through).
func makeTraffic(t *testing.T, ctx context.Context, n *testnet.Net, ng *testnet.Nginx, c e2eCase) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			res := n.Client.Run(ctx, "curl", ng.Curl(c.family, "/small.txt", 3*time.Second)...)
			t.Logf("curl: exit %d %s %s", res.ExitCode, res.Stdout, strings.TrimSpace(string(res.Stderr)))
		})
	}
	hdr := 40
	if c.family == 6 {
		hdr = 60
	}
	for _, mss := range []int{0, c.limit - hdr} {
		wg.Go(func() {
			err := goHandshake(ctx, n, ng, c.family, mss)
			t.Logf("go tls (mss %d): %v", mss, err)
		})
	}
	wg.Wait()
}

func goHandshake(ctx context.Context, n *testnet.Net, ng *testnet.Nginx, family, mss int) error {
	cfg, err := ng.TLSConfig()
	if err != nil {
		return err
	}
	d := &net.Dialer{}
	if mss > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := n.Client.Dialer(d)(hctx, "tcp", ng.Addr(n.Server.Addr(family)))
	if err != nil {
		return err
	}
	defer conn.Close()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	// A request, so the client's data follows the handshake.
	_, err = tc.Write([]byte("GET /small.txt HTTP/1.1\r\nHost: " + testnet.ServerName + "\r\nConnection: close\r\n\r\n"))
	if err == nil {
		buf := make([]byte, 4096)
		_, _ = tc.Read(buf)
	}
	return err
}

// svgToPNG renders the SVG beside it as a PNG with Debian's headless
// Chromium, when it is installed, for people to look at.
func svgToPNG(t *testing.T, svg string) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		return
	}
	png := strings.TrimSuffix(svg, ".svg") + ".png"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--screenshot="+png, "--window-size=1000,1500", "file://"+svg).CombinedOutput()
	if err != nil {
		t.Logf("chromium could not render %s: %v: %s", svg, err, out)
		return
	}
	t.Logf("S2 pair ladder diagram as PNG: %s", png)
}
