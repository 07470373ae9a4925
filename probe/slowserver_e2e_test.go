//go:build linux

package probe_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
	"github.com/mtuscope/mtuscope/sockopt"
)

// slowAbove is a TLS server that answers connections whose segments are
// larger than mss payload bytes only after delay: what a busy server does
// to the large rungs of a run, on a clean path.
func slowAbove(t *testing.T, n *testnet.Net, mss int, delay time.Duration) string {
	t.Helper()
	c, err := testnet.TestCerts()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(c.ChainFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n.Server.Listen("tcp", net.JoinHostPort(n.Server.V4.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				var ti sockopt.TCPInfo
				if rc, err := conn.(syscall.Conn).SyscallConn(); err == nil {
					ti, _ = sockopt.ReadTCPInfo(rc)
				}
				if ti.SndMSS > mss {
					select {
					case <-time.After(delay):
					case <-ctx.Done():
						return
					}
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(conn, cfg)
				if tc.HandshakeContext(ctx) == nil {
					tc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestSlowIsNotLost: on a clean path, a server that answers the large rungs
// only after 1.5 s (more than probe's first handshake timeout) is slow, not
// a black hole. The server's silence is told from a loss (a lost flight's
// last, smaller segment still arrives; here nothing does), the wait grows
// and the rungs are tried again: the run says ok 1500, or at worst that it
// could not measure, never a size limit the path does not have.
func TestSlowIsNotLost(t *testing.T) {
	testnet.Require(t)
	t.Parallel()
	n := testnet.New(t, testnet.Preset("S1"))
	addr := slowAbove(t, n, 1400, 1500*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := n.Client.Run(ctx, testnet.Mtuscope(t), "probe", "--json", "--no-icmp", "--sni", testnet.ServerName, "-4", addr)
	var doc probeDoc
	if err := json.Unmarshal(res.Stdout, &doc); err != nil {
		t.Fatalf("probe output is not JSON: %v\n%s", err, res)
	}
	t.Logf("slow server above MSS 1400: %s %d %s in %v (handshake timeout %d ms)", doc.Verdict, doc.PathMTU, doc.Direction,
		res.Duration, doc.TimeoutMS)
	if doc.Verdict == "ok" && doc.PathMTU == 1500 {
		return
	}
	for _, f := range doc.Findings {
		t.Logf("  %s: %s", f.Code, f.Detail)
	}
	if doc.Verdict != "inconclusive" || !doc.hasFinding("too_slow") {
		t.Errorf("verdict %s %d %s (exit %d), want ok 1500, or inconclusive saying it was too slow to measure; stderr: %s",
			doc.Verdict, doc.PathMTU, doc.Direction, res.ExitCode, strconv.Quote(string(res.Stderr)))
	}
}
