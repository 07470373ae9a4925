package testnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestOffice builds S10: four people behind one NAT address, each on a
// path with its own fault, and shows that the server sees one address for
// all of them (with distinct ports), in IPv4 and IPv6, while each path
// keeps its own size boundary.
func TestOffice(t *testing.T) {
	t.Parallel()
	sc := Office(Faults{}, Faults{DownLimit: 1300}, Faults{UpLimit: 1350}, seed)
	n := New(t, sc)
	// Largest IPv4 packet through each path, both ways.
	largest := []int{1500, 1300, 1350, 1400}
	for _, fam := range []int{4, 6} {
		ln, err := n.Server.Listen("tcp", net.JoinHostPort(n.Server.Addr(fam).String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		seen := make(chan netip.AddrPort, len(n.Clients))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				seen <- netip.MustParseAddrPort(c.RemoteAddr().String())
				c.Close()
			}
		}()
		for _, c := range n.Clients {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := c.DialContext(ctx, "tcp", ln.Addr().String())
			cancel()
			if err != nil {
				t.Fatalf("IPv%d from %s: %v", fam, c, err)
			}
			conn.Close()
		}
		ports := map[uint16]bool{}
		for range n.Clients {
			ap := <-seen
			if ap.Addr().Unmap() != n.NAT.Addr(fam) {
				t.Errorf("IPv%d: server saw %s, want the office address %s", fam, ap, n.NAT.Addr(fam))
			}
			ports[ap.Port()] = true
		}
		ln.Close()
		if len(ports) != len(n.Clients) {
			t.Errorf("IPv%d: %d distinct ports for %d people", fam, len(ports), len(n.Clients))
		}
	}
	// Each path's own boundary: ping -M do at the largest size answers,
	// one byte more is lost (the echo crosses the path both ways).
	for i, c := range n.Clients {
		for _, fam := range []int{4, 6} {
			hdr := 28
			if fam == 6 {
				hdr = 48
			}
			max := largest[i]
			if fam == 6 && i == 3 {
				max = 1400
			}
			for _, size := range []int{max, max + 1} {
				if size > 1500 {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r := c.Run(ctx, "ping", fmt.Sprintf("-%d", fam), "-M", "do", "-c", "1", "-W", "1", "-s", fmt.Sprint(size-hdr), n.Server.Addr(fam).String())
				cancel()
				if ok := r.ExitCode == 0; ok != (size == max) {
					t.Errorf("network %d IPv%d: ping of a %d-byte packet answered = %v: %s", i, fam, size, ok, strings.TrimSpace(string(r.Stdout)))
				}
			}
		}
	}
}
