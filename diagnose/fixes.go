package diagnose

import "fmt"

// Fix is one change that removes or works around a finding.
type Fix struct {
	Code string `json:"code"`
	// Where says who applies it: "network" (the router or firewall on the
	// path), "server" or "client".
	Where    string   `json:"where"`
	Title    string   `json:"title"`
	Commands []string `json:"commands,omitempty"`
}

// fixesFor lists the fixes for a diagnosis, most effective first.
func fixesFor(ev Evidence, d *Diagnosis) []Fix {
	fixes := []Fix{}
	v6 := ev.Family == 6
	mss := d.PathMTU - IPHeader(ev.Family)
	if d.Verdict == VerdictBlackhole {
		ipt, fam := "iptables", "ip"
		if v6 {
			ipt, fam = "ip6tables", "ip6"
		}
		if d.bracketTop > 0 {
			// The size is not known well enough to write it down: clamp
			// to the router's route MTU instead, and guess no tunnel MTU.
			fixes = append(fixes, Fix{
				Code: "clamp_mss", Where: "network",
				Title: fmt.Sprintf("Clamp the TCP MSS to the route MTU on the router or firewall in front of the small-MTU link "+
					"(both directions; the path MTU lies between %d and %d bytes)", d.PathMTU, d.bracketTop),
				Commands: []string{
					fmt.Sprintf("nft add rule %s filter forward tcp flags syn tcp option maxseg size set rt mtu", fam),
					fmt.Sprintf("%s -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu", ipt),
				},
			}, allowICMP(v6))
		} else {
			fixes = append(fixes, Fix{
				Code: "clamp_mss", Where: "network",
				Title: fmt.Sprintf("Clamp the TCP MSS to %d on the router or firewall in front of the small-MTU link (both directions)", mss),
				Commands: []string{
					fmt.Sprintf("nft add rule %s filter forward tcp flags syn tcp option maxseg size set %d", fam, mss),
					fmt.Sprintf("%s -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss %d", ipt, mss),
				},
			}, allowICMP(v6), Fix{
				Code: "tunnel_mtu", Where: "network",
				Title:    fmt.Sprintf("Set the MTU of the tunnel or overlay interface to %d so hosts learn it", d.PathMTU),
				Commands: []string{fmt.Sprintf("ip link set dev TUNNEL mtu %d", d.PathMTU)},
			})
		}
		if d.Direction == Downstream || d.Direction == Both {
			fixes = append(fixes, Fix{
				Code: "server_mtu_probing", Where: "server",
				Title: "Let the server's TCP probe the path MTU itself (RFC 4821) when no ICMP comes back (covers IPv6 too)",
				Commands: []string{
					"sysctl -w net.ipv4.tcp_mtu_probing=1",
					"echo 'net.ipv4.tcp_mtu_probing = 1' > /etc/sysctl.d/60-mtu-probing.conf",
				},
			})
			switch seg := d.PathMTU - IPHeader(ev.Family); {
			case ev.FlightBytes <= 0 || seg <= 0 || ev.FlightBytes <= seg:
			case d.bracketTop > 0:
				fixes = append(fixes, Fix{
					Code: "shrink_server_flight", Where: "server",
					Title: fmt.Sprintf("The server's first flight is %d bytes (several full-size segments): shrink the "+
						"certificate chain (ECDSA keys, no root or cross-signed extras) so fewer large packets are needed",
						ev.FlightBytes),
				})
			default:
				fixes = append(fixes, Fix{
					Code: "shrink_server_flight", Where: "server",
					Title: fmt.Sprintf("The server's first flight is %d bytes (%d full segments at this path's MSS): shrink the "+
						"certificate chain (ECDSA keys, no root or cross-signed extras) so fewer large packets are needed",
						ev.FlightBytes, (ev.FlightBytes+seg-1)/seg),
				})
			}
		}
	}
	if d.Verdict == VerdictBlackhole && (d.Direction == Upstream || d.Direction == Both) {
		fixes = append(fixes, goDisableMLKEM)
	}
	fixes = append(fixes, contentFixes(d, fixes)...)
	if d.has(CodeUDPBlackhole) && d.Verdict != VerdictBlackhole {
		fixes = append(fixes, allowICMP(v6))
	}
	if d.has(CodeFragmentsDropped) {
		cmds := []string{
			"nft insert rule inet filter forward ip frag-off & 0x3fff != 0 accept",
			"iptables -I FORWARD -f -j ACCEPT",
		}
		if v6 {
			cmds = []string{"nft insert rule inet filter forward exthdr frag exists accept",
				"ip6tables -I FORWARD -m frag -j ACCEPT"}
		}
		fixes = append(fixes, Fix{
			Code: "allow_fragments", Where: "network",
			Title:    "Let IP fragments through the firewall on the path (or remove the rule that drops them)",
			Commands: cmds,
		})
	}
	return fixes
}

func allowICMP(v6 bool) Fix {
	if v6 {
		return Fix{
			Code: "allow_icmp", Where: "network",
			Title: "Let ICMPv6 Packet Too Big (type 2) through every firewall on the path, and let routers send it",
			Commands: []string{
				"nft insert rule inet filter forward icmpv6 type packet-too-big accept",
				"ip6tables -I FORWARD -p icmpv6 --icmpv6-type packet-too-big -j ACCEPT",
			},
		}
	}
	return Fix{
		Code: "allow_icmp", Where: "network",
		Title: "Let ICMP Destination Unreachable / Fragmentation Needed (type 3 code 4) through every firewall on the path, and let routers send it",
		Commands: []string{
			"nft insert rule inet filter forward icmp type destination-unreachable icmp code frag-needed accept",
			"iptables -I FORWARD -p icmp --icmp-type fragmentation-needed -j ACCEPT",
		},
	}
}
