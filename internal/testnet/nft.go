package testnet

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// nftRules returns the nft script that applies f on one router of its
// network, or "" when the router needs no rules. r1 (the client side) holds
// the per-direction limits, the MSS clamp and the loss; both routers suppress
// the ICMP they would send and drop fragments.
func nftRules(f Faults, r1 bool) string {
	var out, fwd []string
	if f.NoICMP {
		out = append(out,
			"icmp type destination-unreachable icmp code frag-needed drop",
			"icmpv6 type packet-too-big drop")
	}
	if f.DropFragments {
		fwd = append(fwd, "ip frag-off & 0x3fff != 0 drop", "exthdr frag exists drop")
	}
	if r1 {
		// On r1, "lan" faces the client: packets entering there go upstream.
		if f.DropFragmentsDown && !f.DropFragments {
			fwd = append(fwd, `iifname "mid" ip frag-off & 0x3fff != 0 drop`, `iifname "mid" exthdr frag exists drop`)
		}
		if f.UpLimit > 0 {
			fwd = append(fwd,
				fmt.Sprintf(`iifname "lan" ip length > %d drop`, f.UpLimit),
				fmt.Sprintf(`iifname "lan" ip6 length > %d drop`, f.UpLimit-40))
		}
		if f.DownLimit > 0 {
			fwd = append(fwd,
				fmt.Sprintf(`iifname "mid" ip length > %d drop`, f.DownLimit),
				fmt.Sprintf(`iifname "mid" ip6 length > %d drop`, f.DownLimit-40))
		}
		if f.ClampMSS > 0 {
			// The kernel only ever lowers the MSS option with this statement.
			fwd = append(fwd,
				fmt.Sprintf("meta nfproto ipv4 tcp flags syn tcp option maxseg size set %d", f.ClampMSS),
				fmt.Sprintf("meta nfproto ipv6 tcp flags syn tcp option maxseg size set %d", f.ClampMSS-20))
		}
		if f.LossPerMille > 0 {
			fwd = append(fwd, fmt.Sprintf("numgen random mod 1000 < %d drop", f.LossPerMille))
		}
	}
	if len(out) == 0 && len(fwd) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("table inet mtuscope {\n")
	chain := func(name, hook string, rules []string) {
		fmt.Fprintf(&b, "  chain %s {\n    type filter hook %s priority 0; policy accept;\n", name, hook)
		for _, r := range rules {
			fmt.Fprintf(&b, "    %s\n", r)
		}
		b.WriteString("  }\n")
	}
	if len(out) > 0 {
		chain("output", "output", out)
	}
	if len(fwd) > 0 {
		chain("forward", "forward", fwd)
	}
	b.WriteString("}\n")
	return b.String()
}

// nft loads an nft script inside the host's namespace.
func (h *Host) nft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testnet: nft in %s: %v: %s\nscript:\n%s", h.Name, err, out, script)
	}
	return nil
}
