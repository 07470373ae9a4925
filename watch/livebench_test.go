package watch_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// BenchmarkLiveHandshakes drives as many TLS handshakes as the testbed
// gives (Go clients, 32 at once, in one clean network, against nginx with
// its RSA-4096 chain) for ten seconds per op while watch captures live on
// the server's bridge, and reports the handshake rate watch classified
// and its capture drops. Needs root.
//
//	go test -run X -bench LiveHandshakes -benchtime 1x ./watch
func BenchmarkLiveHandshakes(b *testing.B) {
	testnet.Require(b)
	testnet.RequireTools(b, "nginx")
	n := testnet.New(b, testnet.Scenario{Name: "rate", Networks: []testnet.Faults{{}}})
	ng := n.StartNginx(b)
	bin := testnet.Mtuscope(b)
	dir := b.TempDir()
	w, err := n.Server.Start(bin, "watch", "-i", "br0", "--port", "443", "--data-dir", dir,
		"--asn-db", dir+"/asn.db", "--admin", "127.0.0.1:19091")
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	inNS := &http.Client{Transport: &http.Transport{DialContext: n.Server.DialContext}, Timeout: 10 * time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := inNS.Get("http://127.0.0.1:19091/healthz"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("watch did not start: %s", w.Stderr)
		}
	}
	read := func(name string) float64 {
		v, _ := strconv.ParseFloat(metric(b, inNS, name), 64)
		return v
	}
	tlsConf := &tls.Config{RootCAs: ng.CertPool(), ServerName: ng.ServerName}
	var made atomic.Int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var wg sync.WaitGroup
		for k := 0; k < 32; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					conn, err := n.Client.DialContext(ctx, "tcp", netip.AddrPortFrom(n.Server.V4, 443).String())
					if err != nil {
						continue
					}
					tc := tls.Client(conn, tlsConf)
					if tc.HandshakeContext(ctx) == nil {
						made.Add(1)
					}
					tc.Close()
				}
			}()
		}
		wg.Wait()
		cancel()
	}
	b.StopTimer()
	time.Sleep(12 * time.Second) // let watch's tracker finish the last flows
	completed := read(`mtuscope_handshakes_total{family="4",outcome="completed"}`)
	b.ReportMetric(float64(made.Load())/b.Elapsed().Seconds(), "client_handshakes/s")
	b.ReportMetric(completed/b.Elapsed().Seconds(), "classified_completed/s")
	b.ReportMetric(read("mtuscope_capture_dropped_packets_total"), "capture_drops")
	b.ReportMetric(read("mtuscope_capture_packets_total"), "packets")
}
