package watch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/alertmanagertest"
	"github.com/mtuscope/mtuscope/internal/asntest"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/internal/tlstraffic"
	"github.com/mtuscope/mtuscope/monitor"
)

// customers are S11's four client networks, in testnet order, each with
// its documentation ASN.
var customers = []struct {
	faults testnet.Faults
	asn    uint32
	alert  bool
	dir    diagnose.Direction
}{
	{testnet.Faults{MidMTU: 1400, NoICMP: true, DropFragments: true}, 64496, true, diagnose.Both}, // S2
	{testnet.Faults{DownLimit: 1400}, 64497, true, diagnose.Downstream},                           // S8
	{testnet.Faults{}, 64498, false, ""},                                                          // clean
	{testnet.Faults{LossPerMille: 15}, 64499, false, ""},                                          // 1.5% loss
}

// halfHellos is S12's hostile client in the clean network: five at a
// time, connections that send the first 100 bytes of a 517-byte
// ClientHello and then nothing until they close, seven seconds later.
// They must not count as stalls.
func halfHellos(ctx context.Context, c *testnet.Host, server netip.Addr, wg *sync.WaitGroup) {
	hello := make([]byte, 100)
	copy(hello, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03})
	for k := 0; k < 5; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				conn, err := c.DialContext(dctx, "tcp", netip.AddrPortFrom(server, 443).String())
				cancel()
				if err == nil {
					conn.Write(hello)
					tlstraffic.Sleep(ctx, 7*time.Second)
					conn.Close()
				}
				tlstraffic.Sleep(ctx, 500*time.Millisecond)
			}
		}()
	}
}

// browse loads a page in headless Chromium (its ~1.8 KB post-quantum
// ClientHello) from client c every two seconds, each time in a new browser
// context so that each load opens a new TLS connection; a load that has
// not finished within six seconds is abandoned.
func browse(ctx context.Context, t *testing.T, c *testnet.Host, ng *testnet.Nginx, wg *sync.WaitGroup) {
	b := c.StartChromium(t, "--ignore-certificate-errors")
	var loaded, abandoned int
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { t.Logf("chromium in %s: %d pages loaded, %d abandoned", c, loaded, abandoned) }()
		actx, acancel := remote.NewAllocator(ctx, b.DevTools)
		defer acancel()
		for ctx.Err() == nil {
			tctx, cancel := chromedp.NewContext(actx, chromedp.WithNewBrowserContext())
			done := make(chan struct{})
			var err error
			go func() {
				defer close(done)
				_, err = chromedp.Run(tctx, chromedp.Navigate(ng.URL(4, "/small.txt")))
			}()
			select {
			case <-done:
				if err == nil {
					loaded++
				}
			case <-time.After(6 * time.Second):
				abandoned++
			case <-ctx.Done():
			}
			cancel()
			<-done
			tlstraffic.Sleep(ctx, 2*time.Second)
		}
	}()
}

// Issue 9's "done when", S11 (with S12's half-sent hellos from the clean
// network): watch captures live on the server's bridge;
// the S2 and downstream-only networks alert with their direction and a
// bracket that holds 1400; the clean and the lossy ones do not; removing
// the faults resolves both alerts; a real Alertmanager receives the firing
// and the resolved alerts; and a tcpdump capture of the same traffic,
// replayed with --read, gives the live run's per-network outcome counts.
func TestTestbedCustomers(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "nginx", "curl", "tcpdump")
	amBin := alertmanagertest.Binary(t)
	sc := testnet.Scenario{Name: "S11", Slug: "customers"}
	for _, c := range customers {
		sc.Networks = append(sc.Networks, c.faults)
	}
	n := testnet.New(t, sc)
	ng := n.StartNginx(t)
	bin := testnet.Mtuscope(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	asntest.WriteTestbed(t, db, customers[0].asn, len(customers))
	cfgFile := filepath.Join(dir, "watch.yaml")
	if err := os.WriteFile(cfgFile, []byte("handshake_timeout: 5s\nmonitor:\n  bucket: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Alertmanager in the server's namespace, its notifications to a receiver there.
	notes := &alertmanagertest.Notifications{}
	hookLn, err := n.Server.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hookSrv := &http.Server{Handler: notes}
	go hookSrv.Serve(hookLn)
	defer hookSrv.Close()
	amCfg := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(amCfg, []byte(alertmanagertest.Config("http://"+hookLn.Addr().String())), 0o600); err != nil {
		t.Fatal(err)
	}
	am, err := n.Server.Start(amBin, alertmanagertest.Args(amCfg, filepath.Join(dir, "am"), "127.0.0.1:19093")...)
	if err != nil {
		t.Fatal(err)
	}
	defer am.Stop()
	inNS := &http.Client{Transport: &http.Transport{DialContext: n.Server.DialContext}, Timeout: 10 * time.Second}
	if err := alertmanagertest.WaitReady(inNS, "http://127.0.0.1:19093", 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, am.Stderr)
	}

	pcap := filepath.Join(dir, "server.pcap")
	// A 16 MiB buffer (tcpdump's default is 2 MiB): on two busy cores a small
	// one drops packets, and the replay would differ for that alone.
	capt, err := n.Server.Capture("br0", pcap, "-B", "16384", "tcp port 443 or icmp or icmp6")
	if err != nil {
		t.Fatal(err)
	}
	w, err := n.Server.Start(bin, "watch", "-i", "br0", "--port", "443", "--asn-db", db, "--config", cfgFile,
		"--data-dir", dir, "--admin", "127.0.0.1:19091", "--alertmanager", "http://127.0.0.1:19093",
		"--page-url", "https://diag.example/check", "--handshake-log", filepath.Join(dir, "handshakes.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	snapshot := watchSnapshots(t, inNS, w)

	testnet.Heavy(t, 1) // the S2 network's browser
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tlstraffic.Run(ctx, n, ng, &wg)
	halfHellos(ctx, n.Clients[2], n.Server.V4, &wg)
	if _, err := exec.LookPath("chromium"); err == nil {
		browse(ctx, t, n.Clients[0], ng, &wg)
	} else {
		t.Log("no chromium: the S2 network has no browser among its clients")
	}
	defer func() { stop(); wg.Wait() }()
	start := time.Now()

	// Firing: both faulty networks, in Alertmanager, within a minute.
	want := map[string]bool{"AS64496": true, "AS64497": true}
	for got := map[string]alertmanagertest.GettableAlert{}; len(got) < 2; time.Sleep(time.Second) {
		if time.Since(start) > 90*time.Second {
			t.Fatalf("alertmanager holds %v after %s\nwatch: %s", got, time.Since(start), w.Stderr)
		}
		as, err := alertmanagertest.ActiveAlerts(inNS, "http://127.0.0.1:19093")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if !want[a.Labels["network"]] {
				t.Fatalf("unexpected alert %+v", a)
			}
			got[a.Labels["network"]] = a
		}
	}
	t.Logf("both alerts in Alertmanager %s after the traffic started", time.Since(start).Round(time.Second))
	for _, nw := range []string{"AS64496", "AS64497"} {
		notes.Wait(t, "firing", nw, 30*time.Second)
	}
	checkNetworks(t, snapshot(), true)

	// The faults go (the S2 link keeps its 1400 MTU, but ICMP and
	// fragments pass again): both alerts resolve.
	for i := 0; i < 2; i++ {
		if res := n.R1[i].Run(context.Background(), "nft", "delete", "table", "inet", "mtuscope"); res.ExitCode != 0 {
			t.Fatalf("removing the faults: %s", res)
		}
		// r2 holds rules only where it suppresses ICMP or fragments (S2).
		n.R2[i].Run(context.Background(), "nft", "delete", "table", "inet", "mtuscope")
	}
	n.FlushPMTU(context.Background())
	fixed := time.Now()
	for _, nw := range []string{"AS64496", "AS64497"} {
		notes.Wait(t, "resolved", nw, 120*time.Second)
	}
	if as, _ := alertmanagertest.ActiveAlerts(inNS, "http://127.0.0.1:19093"); len(as) != 0 {
		t.Errorf("still active in Alertmanager: %+v", as)
	}
	t.Logf("resolved %s after the faults were removed", time.Since(fixed).Round(time.Second))

	// Replay equals live: stop the clients, let every handshake finish
	// or time out, then compare with the capture replayed.
	stop()
	wg.Wait()
	time.Sleep(8 * time.Second)
	live := snapshot()
	checkNetworks(t, live, false)
	liveDrops := metric(t, inNS, "mtuscope_capture_dropped_packets_total")
	livePackets := metric(t, inNS, "mtuscope_capture_packets_total")
	w.Signal(syscall.SIGTERM)
	if err := w.Wait(); err != nil || strings.Contains(w.Stderr.String(), "DATA RACE") {
		t.Errorf("watch ended with %v:\n%s", err, w.Stderr)
	}
	summary, err := capt.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("live capture: %s packets, %s dropped; tcpdump: %s", livePackets, liveDrops, strings.TrimSpace(summary))
	res := n.Server.Run(context.Background(), bin, "watch", "--read", pcap, "--json", "--asn-db", db,
		"--config", cfgFile, "--port", "443", "--admin", "", "--handshake-log", filepath.Join(dir, "replay.log"))
	if res.ExitCode != 1 { // alerts fired: exit 1
		t.Fatalf("replay: %s", res)
	}
	var doc struct {
		Networks []monitor.NetworkSummary `json:"networks"`
		Alerts   []monitor.Alert          `json:"alerts"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil {
		t.Fatalf("replay: %v\n%s", err, res.Stdout)
	}
	liveBy := map[string]map[diagnose.Outcome]int{}
	for _, x := range live.Networks {
		liveBy[x.Network] = x.Outcomes
	}
	for _, x := range doc.Networks {
		if fmt.Sprint(x.Outcomes) != fmt.Sprint(liveBy[x.Network]) {
			t.Errorf("%s: replay %v, live %v", x.Network, x.Outcomes, liveBy[x.Network])
		}
		t.Logf("%s: %v alert=%v %s %s %+v", x.Network, x.Outcomes, x.Alert, x.Verdict, x.Direction, x.PathMTU)
	}
	if t.Failed() {
		logDiff(t, filepath.Join(dir, "handshakes.log"), filepath.Join(dir, "replay.log"))
	}
	if len(doc.Networks) != len(live.Networks) {
		t.Errorf("replay has %d networks, live %d", len(doc.Networks), len(live.Networks))
	}
	fired := map[string]int{}
	for _, a := range doc.Alerts {
		fired[a.Network+"/"+a.State]++
	}
	for _, nw := range []string{"AS64496", "AS64497"} {
		if fired[nw+"/firing"] != 1 || fired[nw+"/resolved"] != 1 {
			t.Errorf("replay alerts for %s: %v", nw, fired)
		}
	}
}

// checkNetworks checks each customer's alert, verdict, direction and
// bracket (which must hold the real path MTU, 1400).
func checkNetworks(t *testing.T, s monitor.Snapshot, firing bool) {
	t.Helper()
	by := map[uint32]monitor.NetworkSummary{}
	for _, x := range s.Networks {
		by[x.ASN] = x
	}
	for _, c := range customers {
		x, ok := by[c.asn]
		if !ok {
			t.Errorf("AS%d: not seen", c.asn)
			continue
		}
		t.Logf("AS%d: %v alert=%v firing=%v %s %s %+v", c.asn, x.Outcomes, x.Alert, x.Firing, x.Verdict, x.Direction, x.PathMTU)
		if x.Alert != c.alert || (firing && x.Firing != c.alert) || (!firing && x.Firing) {
			t.Errorf("AS%d: alert %v firing %v", c.asn, x.Alert, x.Firing)
		}
		if !c.alert {
			if x.Verdict.Problem() {
				t.Errorf("AS%d: verdict %s", c.asn, x.Verdict)
			}
			continue
		}
		if x.Verdict != diagnose.VerdictBlackhole || x.Direction != c.dir {
			t.Errorf("AS%d: %s %s, want pmtud_blackhole %s", c.asn, x.Verdict, x.Direction, c.dir)
		}
		if !firing {
			continue // the bracket now mixes the handshakes before and after the fix
		}
		b := x.PathMTU
		if c.dir == diagnose.Both && !(b.UpDelivered <= 1400 && b.UpLost > 1400) {
			t.Errorf("AS%d: upstream bracket %d-%d does not hold 1400", c.asn, b.UpDelivered, b.UpLost)
		}
		if !(b.DownDelivered <= 1400 && b.DownLost > 1400) {
			t.Errorf("AS%d: downstream bracket %d-%d does not hold 1400", c.asn, b.DownDelivered, b.DownLost)
		}
		if x.LastAlert == nil || x.LastAlert.PageURL != "https://diag.example/check" || len(x.LastAlert.Diagnosis.Fixes) == 0 {
			t.Errorf("AS%d: alert %+v", c.asn, x.LastAlert)
		}
	}
}

// logDiff shows the handshakes (by client address and port) whose
// outcome differs between the live and the replayed handshake logs.
func logDiff(t *testing.T, livePath, replayPath string) {
	read := func(p string) map[string]string {
		b, _ := os.ReadFile(p)
		m := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r struct {
				H       string  `json:"id.orig_h"`
				P       int     `json:"id.orig_p"`
				TS      float64 `json:"ts"`
				Outcome string  `json:"outcome"`
			}
			json.Unmarshal([]byte(line), &r)
			m[fmt.Sprintf("%s:%d@%.0f", r.H, r.P, r.TS)] = line
		}
		return m
	}
	l, r := read(livePath), read(replayPath)
	for k, line := range l {
		if _, ok := r[k]; !ok {
			t.Logf("live only:   %s", line)
		}
	}
	for k, line := range r {
		if _, ok := l[k]; !ok {
			t.Logf("replay only: %s", line)
		}
	}
}

// metric reads one unlabelled series from watch's /metrics.
func metric(t testing.TB, c *http.Client, name string) string {
	resp, err := c.Get("http://127.0.0.1:19091/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return "?"
}

// waitWatchAdmin waits, 20 s at most, until watch's admin listener (on
// 127.0.0.1:19091 in the server's namespace, reached through inNS) answers.
func waitWatchAdmin(t *testing.T, inNS *http.Client, w *testnet.Proc) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := inNS.Get("http://127.0.0.1:19091/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("watch admin: %v\n%s", err, w.Stderr)
		}
	}
}

// watchSnapshots waits for the admin listener of w and returns a function
// that reads its networks' snapshot.
func watchSnapshots(t *testing.T, inNS *http.Client, w *testnet.Proc) func() monitor.Snapshot {
	t.Helper()
	waitWatchAdmin(t, inNS, w)
	return func() monitor.Snapshot {
		t.Helper()
		resp, err := inNS.Get("http://127.0.0.1:19091/api/networks")
		if err != nil {
			t.Fatalf("%v\n%s", err, w.Stderr)
		}
		defer resp.Body.Close()
		var s monitor.Snapshot
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return s
	}
}
