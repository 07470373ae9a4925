package watch_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/asntest"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/internal/testnet/middlebox"
	"github.com/mtuscope/mtuscope/internal/tlstraffic"
	"github.com/mtuscope/mtuscope/monitor"
	"github.com/mtuscope/mtuscope/tlswire"
)

// Issue 18 §3's networks, in testnet order, with their documentation ASNs.
const (
	netDevice = iota // S13's device: resets hellos with the X25519MLKEM768 key share
	netClean1        // clean
	netClean2        // clean
	netAborts        // clean, but its clients abort two hellos in three, of either kind
	nFeatureNets
)

const featureASN = 64496 // netDevice's; the others follow

// tally counts one traffic loop's attempts.
type tally struct{ done, failed atomic.Int64 }

// goHellos runs two Go TLS clients in c's network until ctx ends, one over
// IPv4 and one over IPv6, each a full handshake every 300 ms: Go's default
// hello (X25519MLKEM768, 1.5 KB, two segments) when pq, else one with
// X25519 only (271 bytes, one segment).
func goHellos(ctx context.Context, n *testnet.Net, c *testnet.Host, ng *testnet.Nginx, pq bool, got *tally, wg *sync.WaitGroup) {
	conf := &tls.Config{RootCAs: ng.CertPool(), ServerName: ng.ServerName}
	if !pq {
		conf.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	for _, fam := range []int{4, 6} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				hctx, cancel := context.WithTimeout(ctx, 6*time.Second)
				if conn, err := c.DialContext(hctx, "tcp", netip.AddrPortFrom(n.Server.Addr(fam), 443).String()); err == nil {
					tc := tls.Client(conn, conf)
					if tc.HandshakeContext(hctx) == nil {
						got.done.Add(1)
					} else {
						got.failed.Add(1)
					}
					tc.Close()
				}
				cancel()
				tlstraffic.Sleep(ctx, 300*time.Millisecond)
			}
		}()
	}
}

// abortingHellos is a network of clients that give up on their own, with
// no device on the path: over IPv4, of every three connections one is a
// whole Go handshake (post-quantum or classic as goHellos), and two send
// a hello like Go's (built by tlswire), wait for the server's first bytes
// and abort: one with a reset (RST), one with a close (FIN).
func abortingHellos(ctx context.Context, t *testing.T, n *testnet.Net, c *testnet.Host, ng *testnet.Nginx, pq bool, got *tally,
	wg *sync.WaitGroup) {
	spec := tlswire.HelloSpec{ServerName: testnet.ServerName}
	conf := &tls.Config{RootCAs: ng.CertPool(), ServerName: ng.ServerName, CurvePreferences: []tls.CurveID{tls.X25519}}
	if pq {
		spec.Groups, spec.Size = []tlswire.Group{tlswire.GroupX25519MLKEM768, tlswire.GroupX25519}, 1503
		conf.CurvePreferences = nil
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 16<<10)
		for i := 0; ctx.Err() == nil; i++ {
			h, err := tlswire.Build(spec, rand.Reader)
			if err != nil {
				t.Error(err)
				return
			}
			hctx, cancel := context.WithTimeout(ctx, 6*time.Second)
			conn, err := c.DialContext(hctx, "tcp", netip.AddrPortFrom(n.Server.V4, 443).String())
			if err != nil {
				cancel()
				tlstraffic.Sleep(ctx, 300*time.Millisecond)
				continue
			}
			conn.SetDeadline(time.Now().Add(6 * time.Second))
			switch i % 3 {
			case 0:
				tc := tls.Client(conn, conf)
				if tc.HandshakeContext(hctx) == nil {
					got.done.Add(1)
				} else {
					got.failed.Add(1)
				}
			case 1:
				conn.Write(h.Record)
				conn.Read(buf)
				conn.(*net.TCPConn).SetLinger(0)
				got.failed.Add(1)
			case 2:
				conn.Write(h.Record)
				conn.Read(buf)
				got.failed.Add(1)
			}
			cancel()
			conn.Close()
			tlstraffic.Sleep(ctx, 300*time.Millisecond)
		}
	}()
}

// TestTestbedFeatures is issue 18 §3's "done when", live: one network
// behind S13's device (it resets hellos carrying the X25519MLKEM768 key
// share), its Go clients mixing post-quantum and classic hellos; two clean
// networks whose post-quantum hellos complete; one clean network whose
// clients abort a third of their hellos of either kind on their own. watch
// on the server's bridge alerts for the device's network alone, naming
// the post-quantum key share and the fixes; the aborting network does not
// alert although it has as many failed post-quantum hellos; the capture
// replayed gives the same alert.
func TestTestbedFeatures(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "nginx", "tcpdump")
	sc := testnet.Scenario{Name: "S13-watch", Slug: "pq-reject-watch", Networks: make([]testnet.Faults, nFeatureNets)}
	sc.Networks[netDevice].Device = middlebox.PQReject
	n := testnet.New(t, sc)
	ng := n.StartNginx(t)
	bin := testnet.Mtuscope(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	asntest.WriteTestbed(t, db, featureASN, nFeatureNets)
	cfgFile := filepath.Join(dir, "watch.yaml")
	if err := os.WriteFile(cfgFile, []byte("handshake_timeout: 5s\nmonitor:\n  bucket: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pcap := filepath.Join(dir, "server.pcap")
	capt, err := n.Server.Capture("br0", pcap, "-B", "16384", "tcp port 443")
	if err != nil {
		t.Fatal(err)
	}
	w, err := n.Server.Start(bin, "watch", "-i", "br0", "--port", "443", "--asn-db", db, "--config", cfgFile,
		"--data-dir", dir, "--admin", "127.0.0.1:19091", "--page-url", "https://diag.example/check")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	inNS := &http.Client{Transport: &http.Transport{DialContext: n.Server.DialContext}, Timeout: 10 * time.Second}
	snapshot := watchSnapshots(t, inNS, w)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	var counts [nFeatureNets][2]tally // [network][pq]
	for i, c := range n.Clients {
		for k, pq := range []bool{false, true} {
			if i == netAborts {
				abortingHellos(ctx, t, n, c, ng, pq, &counts[i][k], &wg)
				continue
			}
			goHellos(ctx, n, c, ng, pq, &counts[i][k], &wg)
		}
	}
	start := time.Now()
	device := "AS" + strconv.Itoa(featureASN+netDevice)
	aborts := "AS" + strconv.Itoa(featureASN+netAborts)

	// The device's network alerts; the wait is bounded, not timed: the
	// alert needs enough hellos, which a busy machine sends more slowly.
	var fired *monitor.Alert
	for fired == nil {
		if time.Since(start) > 4*time.Minute {
			t.Fatalf("no feature alert after %s: %+v\nwatch: %s", time.Since(start), snapshot().Networks, w.Stderr)
		}
		time.Sleep(2 * time.Second)
		for _, x := range snapshot().Networks {
			if x.FeatureAlert != nil && x.FeatureAlert.State == monitor.Firing {
				a := *x.FeatureAlert
				fired = &a
			}
		}
	}
	t.Logf("feature alert %s after the traffic started: %s", time.Since(start).Round(time.Second), fired.Summary)
	if fired.Network != device || fired.Feature == nil || fired.Feature.Feature != diagnose.VariantPQKeyShare ||
		fired.Diagnosis.Verdict != diagnose.VerdictPQRejected {
		t.Fatalf("alert %+v, want %s, pq_keyshare, clienthello_pq_rejected", fired, device)
	}
	// The device's resets reach the server one hop closer than the
	// client's packets: the alert says the path sent them.
	if fired.Feature.ResetByPath == 0 {
		t.Errorf("no failure reset by the path: %+v", fired.Feature)
	}
	for _, want := range []string{"X25519MLKEM768", "GODEBUG=tlsmlkem=0", "PostQuantumKeyAgreementEnabled", device, "reset by something on the path"} {
		if !strings.Contains(fired.Summary, want) {
			t.Errorf("summary lacks %q: %s", want, fired.Summary)
		}
	}

	// Three more buckets of the same traffic: the aborting network must
	// have had its chance to (wrongly) alert.
	tlstraffic.Sleep(ctx, 30*time.Second)
	snap := snapshot()
	stop()
	wg.Wait()
	for i := range nFeatureNets {
		t.Logf("AS%d clients: classic %d completed %d failed, post-quantum %d completed %d failed", featureASN+i,
			counts[i][0].done.Load(), counts[i][0].failed.Load(), counts[i][1].done.Load(), counts[i][1].failed.Load())
	}
	for _, x := range snap.Networks {
		t.Logf("%s: %v alert=%v %s features %+v", x.Network, x.Outcomes, x.Alert, x.Verdict, x.Features)
		if x.Network == device {
			continue
		}
		if x.Alert || x.FeatureAlert != nil {
			t.Errorf("%s alerted: %+v %+v", x.Network, x.LastAlert, x.FeatureAlert)
		}
		if x.Network != aborts {
			continue
		}
		// The aborting network's post-quantum hellos failed at least as
		// often as the alert needed the device's to: the absence of an
		// alert is the rule's, not a lack of failures.
		for _, f := range x.Features {
			if f.Feature == diagnose.VariantPQKeyShare && f.WithFailed < fired.Feature.Failed {
				t.Errorf("%s: %d failed post-quantum hellos, fewer than the alert's %d: the test shows nothing", x.Network,
					f.WithFailed, fired.Feature.Failed)
			}
		}
	}
	if v := metric(t, inNS, `mtuscope_hello_feature_handshakes_total{feature="pq_keyshare",hello="with",result="failed"}`); v == "?" || v == "0" {
		t.Errorf("failed post-quantum hellos in the metrics: %s", v)
	}

	// The capture replayed gives the same feature alert.
	time.Sleep(6 * time.Second) // the last handshakes finish or time out in the capture
	w.Signal(syscall.SIGTERM)
	if err := w.Wait(); err != nil || strings.Contains(w.Stderr.String(), "DATA RACE") {
		t.Errorf("watch ended with %v:\n%s", err, w.Stderr)
	}
	if _, err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	res := n.Server.Run(context.Background(), bin, "watch", "--read", pcap, "--json", "--asn-db", db,
		"--config", cfgFile, "--port", "443", "--admin", "")
	if res.ExitCode != 1 {
		t.Fatalf("replay: %s", res)
	}
	var doc struct {
		Alerts []monitor.Alert `json:"alerts"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &doc); err != nil {
		t.Fatalf("replay: %v\n%s", err, res.Stdout)
	}
	var replayed []string
	for _, a := range doc.Alerts {
		if a.State == monitor.Firing {
			replayed = append(replayed, a.Kind+"/"+a.Network)
		}
	}
	if len(replayed) != 1 || replayed[0] != monitor.KindFeature+"/"+device {
		t.Errorf("replay fired %v, want one feature alert for %s", replayed, device)
	}
}

// TestTestbedFeaturesMLDSA: S14's device (it resets hellos offering the
// ML-DSA signature algorithms) on one of three networks, each with a
// headless Chromium (its hello carries ML-DSA and the post-quantum key
// share) and Go clients (post-quantum and classic, no ML-DSA). The
// device's network alerts for ML-DSA, not for the post-quantum key share
// its Go clients complete with.
func TestTestbedFeaturesMLDSA(t *testing.T) {
	testnet.Require(t)
	testnet.RequireTools(t, "nginx", "chromium")
	sc := testnet.Scenario{Name: "S14-watch", Slug: "mldsa-reject-watch", Networks: make([]testnet.Faults, 3)}
	sc.Networks[0].Device = middlebox.MLDSAReject
	n := testnet.New(t, sc)
	ng := n.StartNginx(t)
	bin := testnet.Mtuscope(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	asntest.WriteTestbed(t, db, featureASN, 3)
	cfgFile := filepath.Join(dir, "watch.yaml")
	if err := os.WriteFile(cfgFile, []byte("handshake_timeout: 5s\nmonitor:\n  bucket: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := n.Server.Start(bin, "watch", "-i", "br0", "--port", "443", "--asn-db", db, "--config", cfgFile,
		"--data-dir", dir, "--admin", "127.0.0.1:19091")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	inNS := &http.Client{Transport: &http.Transport{DialContext: n.Server.DialContext}, Timeout: 10 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	var counts [3][2]tally
	testnet.Heavy(t, len(n.Clients)) // a browser on each
	for i, c := range n.Clients {
		for k, pq := range []bool{false, true} {
			goHellos(ctx, n, c, ng, pq, &counts[i][k], &wg)
		}
		browse(ctx, t, c, ng, &wg)
	}
	start := time.Now()
	var fired *monitor.Alert
	for fired == nil {
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("no feature alert after %s\nwatch: %s", time.Since(start), w.Stderr)
		}
		time.Sleep(2 * time.Second)
		resp, err := inNS.Get("http://127.0.0.1:19091/api/networks")
		if err != nil {
			continue // watch starting
		}
		var s monitor.Snapshot
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if json.Unmarshal(b, &s) != nil {
			continue
		}
		for _, x := range s.Networks {
			if x.FeatureAlert != nil && x.FeatureAlert.State == monitor.Firing {
				a := *x.FeatureAlert
				fired = &a
			}
		}
	}
	t.Logf("feature alert %s after the traffic started: %s", time.Since(start).Round(time.Second), fired.Summary)
	if fired.Network != "AS"+strconv.Itoa(featureASN) || fired.Feature.Feature != diagnose.VariantMLDSA ||
		fired.Diagnosis.Verdict != diagnose.VerdictMLDSARejected {
		t.Fatalf("alert %+v %+v, want AS%d, mldsa_sigalgs, clienthello_mldsa_rejected", fired, fired.Feature, featureASN)
	}
	var codes []string
	for _, f := range fired.Diagnosis.Fixes {
		codes = append(codes, f.Code)
	}
	if !strings.Contains(strings.Join(codes, " "), "device_allow_mldsa") {
		t.Errorf("fixes %v", codes)
	}
}
