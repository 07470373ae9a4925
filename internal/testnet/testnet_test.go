package testnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of the checks below: a handshake in the namespaces takes
// milliseconds, so one that has not finished in hangAfter is stalled; a
// transfer expected to complete gets okWithin even under 1% loss.
const (
	hangAfter = 2 * time.Second
	okWithin  = 10 * time.Second
)

// expect is what the kernel's own tools must show in a scenario.
type expect struct {
	curl      bool // curl (small hello up, RSA-4096 flight and 256 KiB down) completes
	bigHello  bool // Go's default ClientHello (ML-KEM share, about 1.5 KB) completes
	boundary  [2]int
	fragPing  int  // a 2000-byte ping, fragmented by the sender: 1 answered, -1 lost, 0 not checked
	learnsMTU bool // the client learns the middle link's MTU from ICMP
	icmpSeen  int  // capture on the client shows frag-needed: 1 yes, -1 no, 0 not checked
}

// boundary is the largest "ping -M do -s" payload answered, for IPv4 and
// IPv6; one byte more must be lost. Zero: not checked.
var expectations = map[string]expect{
	"S1": {curl: true, bigHello: true, fragPing: 1},
	"S2": {boundary: [2]int{1372, 1352}, fragPing: -1, icmpSeen: -1},
	"S3": {curl: true, bigHello: true, fragPing: 1, learnsMTU: true, icmpSeen: 1},
	"S4": {curl: true, bigHello: true, boundary: [2]int{1372, 1352}, fragPing: -1},
	"S5": {curl: true, bigHello: true, fragPing: -1},
	"S6": {boundary: [2]int{1252, 1232}, fragPing: -1},
	"S7": {curl: true, boundary: [2]int{1372, 1352}, fragPing: -1},
	"S8": {boundary: [2]int{1372, 1352}, fragPing: -1},
	"S9": {curl: true, bigHello: true},
}

// TestScenarios proves, with curl, ping, tcpdump and Go's TLS client, that
// every preset builds the fault it claims, on IPv4 and IPv6.
func TestScenarios(t *testing.T) {
	for _, sc := range Presets() {
		if sc.HasDevice() {
			continue // S13-S17: TestContentScenarios
		}
		want, ok := expectations[sc.Name]
		if !ok {
			t.Fatalf("no expectations for %s", sc)
		}
		t.Run(sc.String(), func(t *testing.T) {
			t.Parallel()
			n := New(t, sc)
			ng := n.StartNginx(t)
			for _, fam := range []int{4, 6} {
				t.Run(fmt.Sprintf("v%d", fam), func(t *testing.T) {
					t.Parallel()
					checkScenario(t, n, ng, fam, want)
				})
			}
		})
	}
}

func checkScenario(t *testing.T, n *Net, ng *Nginx, fam int, want expect) {
	server := n.Server.Addr(fam).String()
	// count 2: a first fragmented IPv6 echo may die teaching the sender the
	// path MTU (routers never fragment IPv6); the second then gets through.
	ping := func(size int, df bool, count int) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		mode := "do"
		if !df {
			mode = "dont"
		}
		r := n.Client.Run(ctx, "ping", fmt.Sprintf("-%d", fam), "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1",
			"-M", mode, "-s", strconv.Itoa(size), server)
		return r.ExitCode == 0
	}

	// curl: the server's certificate flight and a 256 KiB body come down.
	maxTime := okWithin
	if !want.curl {
		maxTime = hangAfter
	}
	ctx, cancel := context.WithTimeout(context.Background(), okWithin+5*time.Second)
	defer cancel()
	r := n.Client.Run(ctx, "curl", ng.Curl(fam, "/large.bin", maxTime)...)
	switch {
	case want.curl && (r.ExitCode != 0 || string(r.Stdout) != fmt.Sprintf("200 %d", LargeSize)):
		t.Errorf("curl should complete: %s", r)
	case !want.curl && r.ExitCode != 28:
		t.Errorf("curl should hang (exit 28, timeout): %s", r)
	}

	// Go's default ClientHello: one record larger than a segment goes up.
	helloLen, err := goHandshake(n.Client, ng, fam)
	if helloLen <= 1400 {
		t.Errorf("Go's ClientHello is %d bytes, want > 1400 for this check to mean anything", helloLen)
	}
	switch {
	case want.bigHello && err != nil:
		t.Errorf("TLS handshake with a %d-byte ClientHello should complete: %v", helloLen, err)
	case !want.bigHello && !errors.Is(err, context.DeadlineExceeded):
		t.Errorf("TLS handshake with a %d-byte ClientHello should hang, got %v", helloLen, err)
	}

	if b := want.boundary[fam/6]; b > 0 {
		if !ping(b, true, 1) {
			t.Errorf("ping -M do -s %d (the boundary) lost", b)
		}
		if ping(b+1, true, 1) {
			t.Errorf("ping -M do -s %d (one byte over) answered", b+1)
		}
	}
	if want.fragPing != 0 {
		if got := ping(2000, false, 2); got != (want.fragPing > 0) {
			t.Errorf("2000-byte fragmented ping answered = %v, want %v", got, want.fragPing > 0)
		}
	}
	if want.learnsMTU || (want.icmpSeen != 0 && fam == 4) {
		checkPMTULearning(t, n, fam, want)
	}
}

// checkPMTULearning sends one oversized DF ping and looks at what came back:
// with ICMP allowed the client caches the middle link's MTU; the capture on
// the client shows the frag-needed message, or its absence.
func checkPMTULearning(t *testing.T, n *Net, fam int, want expect) {
	server := n.Server.Addr(fam).String()
	var capt *Capture
	if fam == 4 && want.icmpSeen != 0 {
		var err error
		capt, err = n.Client.Capture("eth0", filepath.Join(t.TempDir(), "icmp.pcap"), "icmp")
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	size := 1472 // a 1500-byte packet
	if fam == 6 {
		size = 1452
	}
	n.Client.Run(ctx, "ping", fmt.Sprintf("-%d", fam), "-n", "-c", "2", "-i", "0.2", "-W", "1",
		"-M", "do", "-s", strconv.Itoa(size), server)
	route := n.Client.Run(ctx, "ip", fmt.Sprintf("-%d", fam), "route", "get", server)
	learned := strings.Contains(string(route.Stdout), "mtu 1400")
	if learned != want.learnsMTU {
		t.Errorf("client learned PMTU 1400 = %v, want %v; ip route get: %s", learned, want.learnsMTU, route.Stdout)
	}
	if capt == nil {
		return
	}
	if _, err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	dump := n.Client.Run(ctx, "tcpdump", "-n", "-r", capt.File)
	seen := strings.Contains(string(dump.Stdout), "need to frag (mtu 1400)")
	if seen != (want.icmpSeen > 0) {
		t.Errorf("frag-needed seen by the client = %v, want %v; capture:\n%s%s", seen, want.icmpSeen > 0, dump.Stdout, dump.Stderr)
	}
	if !strings.Contains(string(dump.Stdout), "echo request") {
		t.Errorf("capture holds no echo request: the capture itself is broken:\n%s%s", dump.Stdout, dump.Stderr)
	}
}

// goHandshake dials nginx from h with crypto/tls's defaults and returns the
// size of the first record written (the ClientHello) and the handshake's
// error, context.DeadlineExceeded when it hangs.
func goHandshake(h *Host, ng *Nginx, fam int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
	defer cancel()
	c, err := h.DialContext(ctx, "tcp", ng.Addr(ng.Host.Addr(fam)))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	cfg, err := ng.TLSConfig()
	if err != nil {
		return 0, err
	}
	cc := &firstWrite{Conn: c}
	err = tls.Client(cc, cfg).HandshakeContext(ctx)
	if ctx.Err() != nil {
		err = context.DeadlineExceeded
	}
	return int(cc.n.Load()), err
}

// firstWrite records the size of the first write on a connection.
type firstWrite struct {
	net.Conn
	n atomic.Int64
}

func (f *firstWrite) Write(b []byte) (int, error) {
	f.n.CompareAndSwap(0, int64(len(b)))
	return f.Conn.Write(b)
}

func TestPresetLookup(t *testing.T) {
	for _, name := range []string{"S2", "s2", "seed", "SEED"} {
		if sc, err := LookupPreset(name); err != nil || sc.Name != "S2" || sc.Networks[0] != seed {
			t.Errorf("LookupPreset(%q) = %v, %v", name, sc, err)
		}
	}
	if _, err := LookupPreset("S10"); err == nil {
		t.Error("LookupPreset(S10) found something")
	}
	a, b := Presets(), Presets()
	a[0].Networks[0].MidMTU = 9000
	if b[0].Networks[0].MidMTU != 0 || presets[0].Networks[0].MidMTU != 0 {
		t.Error("Presets returns shared slices")
	}
	if len(a) != 14 {
		t.Errorf("%d presets, want 14 (S1-S9, S13-S17)", len(a))
	}
}

func TestOwnerPID(t *testing.T) {
	for name, want := range map[string]int{
		"mtuscope-123-4-c0": 123, "mtuscope-7-1-srv": 7, "mtuscope-x-1-srv": 0,
		"other-123-1-c0": 0, "mtuscope-": 0, "mtuscope-0-1-c0": 0,
	} {
		if got, _ := ownerPID(name); got != want {
			t.Errorf("ownerPID(%q) = %d, want %d", name, got, want)
		}
	}
}

// TestMultipleNetworks builds three client networks with different faults
// and shows that each path has its own: the black hole is only in network 1.
func TestMultipleNetworks(t *testing.T) {
	t.Parallel()
	n := New(t, Scenario{Name: "multi", Networks: []Faults{{}, seed, {LossPerMille: 0, ClampMSS: 1200}}})
	ng := n.StartNginx(t)
	for i, c := range n.Clients {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r := c.Run(ctx, "curl", ng.Curl(4, "/small.txt", hangAfter)...)
		cancel()
		if hung := r.ExitCode == 28; hung != (i == 1) {
			t.Errorf("network %d (client %s): curl hung = %v: %s", i, c.V4, hung, r)
		}
	}
	if got := n.Clients[2].V4.String(); got != "198.51.100.34" {
		t.Errorf("client 2 address %s", got)
	}
	// nginx saw each client by its own address. It logs a request after
	// sending the response, so the line may come a moment after curl ends.
	for _, c := range []*Host{n.Clients[0], n.Clients[2]} {
		var log string
		for try := 0; try < 50; try++ {
			if log = ng.AccessLog(); strings.Contains(log, c.V4.String()+" ") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(log, c.V4.String()+" ") {
			t.Errorf("access log lacks %s:\n%s", c.V4, log)
		}
	}
}

// TestCleanup shows that Close removes the namespaces and the processes in
// them, and that a namespace left by a dead process is removed at start.
func TestCleanup(t *testing.T) {
	Require(t)
	ctx := context.Background()
	n, err := Build(ctx, Preset("S1"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := n.Server.Start("sleep", "600")
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	pid := p.Cmd.Process.Pid
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := listNamespaces()
	for _, h := range n.Hosts() {
		for _, ns := range names {
			if ns == h.Name {
				t.Errorf("namespace %s still exists after Close", ns)
			}
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("process %d started in the net is still running", pid)
	}

	// A namespace named after a process that no longer exists.
	dead := 1 << 22 // above the default pid_max of 4194304: never a live pid
	stale := fmt.Sprintf("%s%d-1-c0", nsPrefix, dead)
	if err := ipBatch(ctx, "", []string{"netns add " + stale}); err != nil {
		t.Fatal(err)
	}
	removeStale()
	names, _ = listNamespaces()
	for _, ns := range names {
		if ns == stale {
			deleteNamespace(ns)
			t.Errorf("stale namespace %s was not removed", ns)
		}
	}
}

// TestDo shows that Go code run with Do is inside the namespace, and that
// the calling thread is not.
func TestDo(t *testing.T) {
	t.Parallel()
	n := New(t, Preset("S1"))
	ln, err := n.Server.Listen("tcp", net.JoinHostPort(ServerV4.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := n.Client.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v", buf, err)
	}
	c.Close()
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != n.Client.V4.String() {
		t.Errorf("dialled from %s, want the client's %s", got, n.Client.V4)
	}
	// Outside the namespace the server's address is not local.
	if l2, err := net.Listen("tcp", net.JoinHostPort(ServerV4.String(), "0")); err == nil {
		l2.Close()
		t.Error("the test process itself can bind the server's address: Do leaked the namespace")
	}
	if r := n.Client.Run(ctx, "getent", "ahosts", ServerName); !strings.Contains(string(r.Stdout), "203.0.113.10") ||
		!strings.Contains(string(r.Stdout), "2001:db8:300::10") {
		t.Errorf("%s does not resolve in the namespace: %s", ServerName, r)
	}
	// Lookups of other names go to the namespace's own loopback, never
	// towards the machine's resolver.
	if r := n.Client.Run(ctx, "cat", "/etc/resolv.conf"); strings.TrimSpace(string(r.Stdout)) != strings.TrimSpace(resolvConf) {
		t.Errorf("resolv.conf in the namespace: %s", r)
	}
	if r := n.Client.Run(ctx, "getent", "hosts", "no-such-host.invalid"); r.ExitCode == 0 {
		t.Errorf("an unknown name resolved in the namespace: %s", r)
	}
	if _, err := n.Client.DialContext(ctx, "tcp", "server.mtuscope.test:443"); err == nil {
		t.Error("Dialer accepted a name")
	}
	if err := n.Client.Do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic inside Do: %v", err)
	}
}

// TestMtuscopeBinary runs the built binary inside a namespace.
func TestMtuscopeBinary(t *testing.T) {
	t.Parallel()
	n := New(t, Preset("S1"))
	bin := Mtuscope(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := n.Client.Run(ctx, bin, "version")
	if r.ExitCode != 0 || !strings.HasPrefix(string(r.Stdout), "mtuscope ") {
		t.Errorf("mtuscope version in %s: %s", n.Client, r)
	}
}

// TestFlushPMTU shows that FlushPMTU forgets what ICMP taught the client.
func TestFlushPMTU(t *testing.T) {
	t.Parallel()
	n := New(t, Preset("S3"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	learned := func() bool {
		r := n.Client.Run(ctx, "ip", "route", "get", ServerV4.String())
		return strings.Contains(string(r.Stdout), "mtu 1400")
	}
	n.Client.Run(ctx, "ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "1472", ServerV4.String())
	if !learned() {
		t.Fatal("the client did not learn PMTU 1400 from ICMP")
	}
	if err := n.FlushPMTU(ctx); err != nil {
		t.Fatal(err)
	}
	if learned() {
		t.Error("FlushPMTU left the learned MTU in place")
	}
}

// TestInterceptor shows that the interceptor on r1 terminates the client's
// TLS with its own certificate and that the server sees r1, not the client.
func TestInterceptor(t *testing.T) {
	t.Parallel()
	n := New(t, Preset("S1"))
	ng := n.StartNginx(t)
	ic := n.StartInterceptor(t, 0, 443)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, fam := range []int{4, 6} {
		// Trusting only the real root fails: the certificate is forged.
		if r := n.Client.Run(ctx, "curl", ng.Curl(fam, "/small.txt", 5*time.Second)...); r.ExitCode != 60 {
			t.Errorf("v%d: curl trusting the real root: want exit 60 (bad certificate): %s", fam, r)
		}
		args := ng.Curl(fam, "/large.bin", 5*time.Second, "--cacert", ic.CAFile) // the last --cacert wins
		if r := n.Client.Run(ctx, "curl", args...); r.ExitCode != 0 || string(r.Stdout) != fmt.Sprintf("200 %d", LargeSize) {
			t.Errorf("v%d: curl through the interceptor: %s", fam, r)
		}
	}
	for try := 0; try < 50 && !strings.Contains(ng.AccessLog(), "192.0.2.1 "); try++ {
		time.Sleep(20 * time.Millisecond)
	}
	log := ng.AccessLog()
	if !strings.Contains(log, "192.0.2.1 ") || !strings.Contains(log, "2001:db8:200:0::1 ") && !strings.Contains(log, "2001:db8:200::1 ") {
		t.Errorf("server should see r1's middle-link addresses:\n%s", log)
	}
	if strings.Contains(log, n.Client.V4.String()+" ") {
		t.Errorf("server saw the client directly:\n%s", log)
	}
	if !strings.Contains(ic.AccessLog(), n.Client.V4.String()+" ") {
		t.Errorf("interceptor did not log the client:\n%s", ic.AccessLog())
	}
}
