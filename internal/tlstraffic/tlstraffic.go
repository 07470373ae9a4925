// Package tlstraffic runs real TLS clients in the testbed's client
// networks against its nginx (curl and Go's client, small and
// post-quantum hellos), the traffic watch's live tests classify.
package tlstraffic

import (
	"context"
	"crypto/tls"
	"net/netip"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// Run runs real clients in every client network of n until ctx ends:
// curl (a small ClientHello, the server's 3.8 KB flight) and Go's TLS
// client (its 1.5 KB post-quantum hello), three of each at once per
// network, two over IPv4 and one over IPv6, each pausing a second between
// attempts. wg counts the client goroutines.
func Run(ctx context.Context, n *testnet.Net, ng *testnet.Nginx, wg *sync.WaitGroup) {
	for _, c := range n.Clients {
		From(ctx, n, c, ng, wg)
	}
}

// From runs Run's clients in the one client network of c.
func From(ctx context.Context, n *testnet.Net, c *testnet.Host, ng *testnet.Nginx, wg *sync.WaitGroup) {
	tlsConf := &tls.Config{RootCAs: ng.CertPool(), ServerName: ng.ServerName}
	for k := 0; k < 3; k++ {
		fam := 4
		if k == 2 {
			fam = 6
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(ctx, 8*time.Second)
				c.Run(rctx, "curl", ng.Curl(fam, "/small.txt", 6*time.Second)...)
				cancel()
				Sleep(ctx, time.Second)
			}
		}()
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				hctx, cancel := context.WithTimeout(ctx, 6*time.Second)
				if conn, err := c.DialContext(hctx, "tcp", netip.AddrPortFrom(n.Server.Addr(fam), 443).String()); err == nil {
					tc := tls.Client(conn, tlsConf)
					tc.HandshakeContext(hctx)
					tc.Close()
				}
				cancel()
				Sleep(ctx, time.Second)
			}
		}()
	}
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
