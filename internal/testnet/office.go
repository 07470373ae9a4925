package testnet

import (
	"fmt"
	"net/netip"
	"strings"
)

// The office's one public address: what the server sees of every person
// behind its NAT router.
var (
	OfficeV4 = netip.MustParseAddr("203.0.113.64")
	OfficeV6 = netip.MustParseAddr("2001:db8:300::40")
)

// Office returns scenario S10: one client network per fault set, each
// behind its own r1, all converging on one NAT router that masquerades
// them to OfficeV4 and OfficeV6 with random ports.
func Office(networks ...Faults) Scenario {
	return Scenario{Name: "S10", Slug: "office", Networks: networks, Office: true}
}

// officeConfig adds the ip batch lines of an office topology to cfg:
// clients and their r1 as usual, the NAT router with one mid link per
// network and one uplink to the server's bridge.
func (n *Net) officeConfig(cfg map[string][]string) {
	nat := []string{"link set lo up", "link set srv up",
		"addr add " + OfficeV4.String() + "/24 dev srv",
		"addr add " + OfficeV6.String() + "/64 dev srv nodad",
	}
	downLimited := false
	for i, f := range n.Scenario.Networks {
		c, r1 := n.Clients[i], n.R1[i]
		midR1v4, midNATv4, midR1v6, midNATv6 := midLink(i)
		mtu := f.mtu()
		cfg[c.Name], cfg[r1.Name] = clientAndR1(i, mtu, midNATv4, midNATv6)
		cfg[c.Name] = append(cfg[c.Name], f.gsoLines("eth0", f.UpLimit)...)
		if f.DownLimit > 0 {
			downLimited = true
		}
		nat = append(nat,
			fmt.Sprintf("link set mid%d mtu %d up", i, mtu),
			fmt.Sprintf("addr add %s/30 dev mid%d", midNATv4, i),
			fmt.Sprintf("addr add %s/64 dev mid%d nodad", midNATv6, i),
			fmt.Sprintf("route add 198.51.100.%d/28 via %s", 16*i, midR1v4),
			fmt.Sprintf("route add 2001:db8:100:%x::/64 via %s", i, midR1v6),
		)
	}
	cfg[n.NAT.Name] = nat
	if downLimited {
		cfg[n.Server.Name] = append(cfg[n.Server.Name], Faults{}.gsoLines("n0", 1)...)
	}
}

// officeNAT is the NAT router's nft script: masquerade to the uplink's
// address with random ports, IPv4 and IPv6, and the ICMP suppression and
// fragment dropping of any network that asks for them (the router is one
// box: those apply to every network behind it).
func officeNAT(networks []Faults) string {
	var noICMP, dropFrags bool
	for _, f := range networks {
		noICMP = noICMP || f.NoICMP
		dropFrags = dropFrags || f.DropFragments
	}
	var b strings.Builder
	b.WriteString("table inet mtuscope-nat {\n")
	b.WriteString("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n")
	b.WriteString("    oifname \"srv\" masquerade random\n  }\n")
	if noICMP {
		b.WriteString("  chain output {\n    type filter hook output priority 0; policy accept;\n")
		b.WriteString("    icmp type destination-unreachable icmp code frag-needed drop\n")
		b.WriteString("    icmpv6 type packet-too-big drop\n  }\n")
	}
	if dropFrags {
		b.WriteString("  chain forward {\n    type filter hook forward priority 0; policy accept;\n")
		b.WriteString("    ip frag-off & 0x3fff != 0 drop\n    exthdr frag exists drop\n  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}
