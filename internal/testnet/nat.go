package testnet

import (
	"context"
	"fmt"
)

// Masquerade makes client network i's r1 a NAT, as an office router: what
// leaves it towards the server (its "mid" interface) takes r1's own
// address and a random source port (nft "masquerade random"), IPv4 and
// IPv6. Sequence numbers are left as they are.
func (n *Net) Masquerade(ctx context.Context, i int) error {
	if i < 0 || i >= len(n.R1) {
		return fmt.Errorf("testnet: masquerade: no client network %d", i)
	}
	return n.R1[i].nft(ctx, `table inet mtuscope_nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "mid" masquerade random
  }
}
`)
}
