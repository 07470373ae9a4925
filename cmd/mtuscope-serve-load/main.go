// Command mtuscope-serve-load loads `mtuscope serve` across the testbed:
// the real binary in the server namespace, and from 16 client networks
// with the scenario's faults many concurrent page sessions (the server
// runs one session per client address at a time, so each network's are
// queued) (every step of every rung, as the page's
// script does) and a stream of stored reports; then it checks that every
// report it was told was stored is there, and prints latencies. It needs
// root (network namespaces).
//
//	go build -o bin/mtuscope ./cmd/mtuscope
//	go run ./cmd/mtuscope-serve-load -bin bin/mtuscope
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/internal/pageclient"
	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

func main() {
	bin := flag.String("bin", "bin/mtuscope", "mtuscope binary")
	sessions := flag.Int("sessions", 200, "concurrent page sessions")
	reports := flag.Int("reports", 2000, "reports to store")
	conc := flag.Int("concurrency", 50, "concurrent report submitters")
	scenario := flag.String("scenario", "S1", "testbed scenario")
	flag.Parse()
	if err := run(*bin, *scenario, *sessions, *reports, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "mtuscope-serve-load:", err)
		os.Exit(1)
	}
}

const config = `limits: {sessions_per_minute: 1000000, reports_per_minute: 1000000, tests_per_second: 1000000, burst: 1000000}
`

func run(bin, scenario string, sessions, reports, conc int) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	sc, err := testnet.LookupPreset(scenario)
	if err != nil {
		return err
	}
	// Sixteen client networks: the server tests one session per address at
	// a time, so sessions spread over addresses to run concurrently.
	for len(sc.Networks) < 16 {
		sc.Networks = append(sc.Networks, sc.Networks[0])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := testnet.Build(ctx, sc)
	if err != nil {
		return err
	}
	defer n.Close()
	dir, err := os.MkdirTemp("", "mtuscope-serve-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return err
	}
	p, err := n.Server.Start(bin, "serve", "--config", cfg, "--data-dir", dir, "--log-level", "debug")
	if err != nil {
		return err
	}
	defer p.Stop()
	srv := &servetest.Serve{Net: n, Proc: p, DataDir: dir}
	if err := srv.WaitReady(n.Client, 4, 20*time.Second); err != nil {
		return fmt.Errorf("server: %v\n%s", err, p.Stderr.String())
	}
	base := strings.TrimSuffix(srv.URL(4, ""), "/")
	clientOf := func(i int) (*http.Client, func(ctx context.Context, network, addr string) (net.Conn, error)) {
		d := n.Clients[i%len(n.Clients)].Dialer(&net.Dialer{})
		return &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
			DialContext: d, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			MaxIdleConnsPerHost: 64,
		}}, d
	}
	newClient := func() *http.Client { c, _ := clientOf(0); return c }
	var mu sync.Mutex
	var ids []string
	var errs []error

	// Phase 1: concurrent page sessions, each with its own connections.
	fmt.Printf("phase 1: %d concurrent page sessions (%s, every rung)\n", sessions, scenario)
	var sessLat, storeLat []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, dial := clientOf(i)
			defer c.CloseIdleConnections()
			r, err := pageclient.Check(ctx, c, base, dial)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			ids = append(ids, r.ReportID)
			sessLat, storeLat = append(sessLat, r.Session), append(storeLat, r.Store)
		}()
	}
	wg.Wait()
	fmt.Printf("  %d sessions in %v, %d errors; session p50 %v p99 %v; result+store p50 %v p99 %v\n",
		len(sessLat), time.Since(start).Round(time.Millisecond), len(errs), pct(sessLat, 50), pct(sessLat, 99), pct(storeLat, 50), pct(storeLat, 99))

	// Phase 2: reports stored as fast as conc submitters can.
	fmt.Printf("phase 2: %d reports, %d concurrent submitters\n", reports, conc)
	body := `{"target":"203.0.113.10:8444","evidence":[{"family":4,"local_mtu":1500,"connected":true,` +
		`"segments":[{"up_size":1400,"down_size":1400,"up":"passed","down":"passed","outcome":"completed"},` +
		`{"up_size":1500,"down_size":1500,"up":"failed","down":"failed","outcome":"stalled_clienthello"}]}]}`
	var repLat []time.Duration
	work := make(chan int)
	c := newClient()
	start = time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/reports", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				var b []byte
				if err == nil {
					b, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("%s: %s", resp.Status, b)
					}
				}
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if i := strings.Index(string(b), `"id": "`); i >= 0 && len(b) >= i+33 {
					ids = append(ids, string(b[i+7:i+33]))
					repLat = append(repLat, d)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < reports; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("  %d reports in %v (%.0f/s), %d errors; p50 %v p99 %v\n", len(repLat), took.Round(time.Millisecond),
		float64(len(repLat))/took.Seconds(), len(errs), pct(repLat, 50), pct(repLat, 99))

	// Every acknowledged report is there (asked on the admin listener,
	// from inside the server's namespace).
	admin := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: n.Server.Dialer(&net.Dialer{})}}
	missing := 0
	for _, id := range ids {
		resp, err := admin.Get("http://127.0.0.1:9090/api/v1/reports/" + id)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			missing++
		}
	}
	fmt.Printf("check: %d reports acknowledged, %d missing\n", len(ids), missing)
	for i, e := range errs {
		if i >= 5 {
			break
		}
		fmt.Println("  error:", e)
	}
	if len(errs) > 0 {
		logs := p.Stderr.String()
		fmt.Printf("server log (last 3000 bytes):\n%s\n", logs[max(0, len(logs)-3000):])
	}
	switch {
	case len(errs) > 0 || missing > 0:
		return fmt.Errorf("%d errors, %d missing reports", len(errs), missing)
	case took > time.Minute:
		return fmt.Errorf("%d reports took %v, more than a minute", reports, took)
	}
	return nil
}

// pct returns the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(100 * time.Microsecond)
}
