// Command mtuscope-capgen makes a large capture of real TLS handshakes for
// benchmarks: it builds a testbed with four client networks (clean, the S2
// black hole, a downstream-only 1400-byte limit, 1.5% loss), runs nginx on
// the server and real clients in the client namespaces (Go's TLS client,
// with post-quantum and classical hellos, and curl), bounded in count and
// time, while tcpdump captures everything on the server's br0. It needs
// root (network namespaces), nginx, curl and tcpdump.
//
//	go run ./cmd/mtuscope-capgen -o /work/bench/handshakes.pcap
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/packet"
)

// networks are the client networks of the capture, in order.
var networks = []struct {
	name   string
	faults testnet.Faults
}{
	{"clean", testnet.Faults{}},
	{"blackhole", testnet.Faults{MidMTU: 1400, NoICMP: true, DropFragments: true}},
	{"downstream-limit", testnet.Faults{DownLimit: 1400}},
	{"lossy", testnet.Faults{LossPerMille: 15}},
}

type config struct {
	out         string
	handshakes  int
	concurrency int
	maxTime     time.Duration
	timeout     time.Duration
	minPackets  int
}

func main() {
	var c config
	flag.StringVar(&c.out, "o", "", "pcap file to write (required)")
	flag.IntVar(&c.handshakes, "handshakes", 24000, "connections to attempt, all networks together")
	flag.IntVar(&c.concurrency, "concurrency", 12, "concurrent Go clients per network (plus one curl)")
	flag.DurationVar(&c.maxTime, "max-time", 20*time.Minute, "stop the clients after this long, whatever the count")
	flag.DurationVar(&c.timeout, "timeout", 3*time.Second, "a connection's time limit (stalled handshakes end here)")
	flag.IntVar(&c.minPackets, "min-packets", 300000, "fail unless the capture holds at least this many packets")
	flag.Parse()
	if c.out == "" {
		fmt.Fprintln(os.Stderr, "mtuscope-capgen: -o is required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "mtuscope-capgen:", err)
		os.Exit(1)
	}
}

// tally counts one network's outcomes.
type tally struct {
	attempts, completed, failed atomic.Int64
}

func run(c config) error {
	out, err := filepath.Abs(c.out)
	if err != nil {
		return err
	}
	sc := testnet.Scenario{Name: "capgen"}
	for _, nw := range networks {
		sc.Networks = append(sc.Networks, nw.faults)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.maxTime)
	defer cancel()
	n, err := testnet.Build(ctx, sc)
	if err != nil {
		return err
	}
	defer n.Close()
	dir, err := os.MkdirTemp("", "mtuscope-capgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ng, err := n.StartNginxIn(dir)
	if err != nil {
		return err
	}
	// A 64 MiB kernel buffer: with the default 2 MiB, tcpdump drops
	// packets at these rates.
	capt, err := n.Server.Capture("br0", out, "-B", "65536")
	if err != nil {
		return err
	}
	fmt.Printf("capturing on the server's br0 into %s; %d connections at most, for %v at most\n", out, c.handshakes, c.maxTime)

	var budget atomic.Int64
	budget.Store(int64(c.handshakes))
	take := func(k int64) bool { return budget.Add(-k) >= 0 }
	tallies := make([]tally, len(networks))
	var wg sync.WaitGroup
	for i := range networks {
		h, t := n.Clients[i], &tallies[i]
		dial := h.Dialer(&net.Dialer{})
		for w := range c.concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg := &tls.Config{RootCAs: ng.CertPool(), ServerName: ng.ServerName, NextProtos: []string{"http/1.1"}}
				if w%2 == 1 {
					cfg.CurvePreferences = []tls.CurveID{tls.X25519} // a small, one-segment hello
				}
				for k := 0; ctx.Err() == nil && take(1); k++ {
					fam := 4 + 2*(k%2)
					t.attempts.Add(1)
					if err := fetch(ctx, dial, ng.Addr(n.Server.Addr(fam)), cfg, c.timeout); err != nil {
						t.failed.Add(1)
					} else {
						t.completed.Add(1)
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			const urls = 10
			for k := 0; ctx.Err() == nil && take(urls); k++ {
				args := []string{"-sS", "--cacert", ng.CAFile, "-H", "Connection: close",
					"--max-time", strconv.FormatFloat(c.timeout.Seconds(), 'f', 1, 64)}
				for range urls {
					args = append(args, "-o", "/dev/null", ng.URL(4+2*(k%2), "/small.txt"))
				}
				r := h.Run(ctx, "curl", args...)
				t.attempts.Add(urls)
				if r.ExitCode == 0 {
					t.completed.Add(urls)
				} else {
					t.failed.Add(urls) // one exit status for all: counted whole
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			fmt.Printf("  %v: %s\n", time.Since(start).Round(time.Second), summary(tallies))
		}
	}
	clients := time.Since(start)
	stats, err := capt.Stop()
	if err != nil {
		return err
	}
	fmt.Printf("clients done after %v: %s\ntcpdump: %s\n", clients.Round(time.Second), summary(tallies), lastLines(stats))
	return check(out, c.minPackets, time.Since(start))
}

// fetch makes one connection: a full TLS handshake (no resumption), a GET
// of /small.txt and the server's close, within timeout.
func fetch(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), addr string, cfg *tls.Config, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	deadline, _ := ctx.Deadline()
	raw.SetDeadline(deadline)
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if _, err := io.WriteString(tc, "GET /small.txt HTTP/1.1\r\nHost: "+cfg.ServerName+"\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, tc)
	if err == nil && n < testnet.SmallSize {
		err = errors.New("short response")
	}
	return err
}

func summary(ts []tally) string {
	s := ""
	for i := range ts {
		s += fmt.Sprintf("%s %d/%d ok; ", networks[i].name, ts[i].completed.Load(), ts[i].attempts.Load())
	}
	return s
}

// lastLines returns tcpdump's closing figures.
func lastLines(stderr string) string {
	var out []byte
	for _, b := range []byte(stderr) {
		if b == '\n' {
			b = ';'
		}
		out = append(out, b)
	}
	if len(out) > 300 {
		out = out[len(out)-300:]
	}
	return string(out)
}

// check counts the capture's packets through the capture package and fails
// when there are too few.
func check(path string, minPackets int, took time.Duration) error {
	src, err := capture.OpenFile(path)
	if err != nil {
		return err
	}
	defer src.Close()
	var (
		p                     packet.Packet
		total, tcp, syns, icm int
	)
	for {
		data, ci, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		total++
		if packet.Decode(ci.Link, data, &p) != nil || !p.Transport {
			continue
		}
		switch {
		case p.Proto == packet.ProtoTCP:
			tcp++
			if p.TCP.Flags&(packet.SYN|packet.ACK) == packet.SYN {
				syns++
			}
		case p.TooBig():
			icm++
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d packets (%d TCP, %d SYNs, %d ICMP too-big), %.1f MB, made in %v\n",
		path, total, tcp, syns, icm, float64(fi.Size())/1e6, took.Round(time.Second))
	if total < minPackets {
		return fmt.Errorf("%d packets, fewer than the %d wanted: raise -handshakes", total, minPackets)
	}
	return nil
}
