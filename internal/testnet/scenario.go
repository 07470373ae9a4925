package testnet

import (
	"fmt"
	"strings"

	"github.com/mtuscope/mtuscope/internal/testnet/middlebox"
)

// Faults are the impairments of one client network's path. Every knob is
// independent; the zero value is a clean 1500-byte path. All of them are
// applied on that network's two routers only, so networks differ.
type Faults struct {
	// MidMTU is the MTU of the link between r1 and r2 (0 means 1500).
	MidMTU int
	// NoICMP makes both routers drop the ICMP "fragmentation needed" and
	// ICMPv6 "packet too big" messages they generate.
	NoICMP bool
	// DropFragments makes both routers drop IPv4 fragments and IPv6 packets
	// with a fragment header.
	DropFragments bool
	// DropFragmentsDown makes r1 drop fragments coming from the server side
	// only, as a firewall in front of the client that lets no inbound
	// fragment through.
	DropFragmentsDown bool
	// UpLimit silently drops client-to-server IP packets larger than this
	// many bytes (IPv4 total length; the IPv6 packet including its header).
	UpLimit int
	// DownLimit is UpLimit for server-to-client packets.
	DownLimit int
	// ClampMSS rewrites the MSS option of SYN and SYN-ACK segments crossing
	// r1 down to this IPv4 MSS (never up). IPv6 SYNs are clamped to
	// ClampMSS-20, so both families end up with packets of the same size.
	ClampMSS int
	// LossPerMille drops that many packets in a thousand, at random, in
	// both directions at r1.
	LossPerMille int
	// Device puts a content-inspecting middlebox on r1 (see package
	// middlebox and Net.Middleboxes): the TCP packets r1 forwards from the
	// client side go through it, IPv4 and IPv6. "" means none.
	Device middlebox.Kind
}

// mtu returns the effective MTU of the middle link.
func (f Faults) mtu() int {
	if f.MidMTU == 0 {
		return 1500
	}
	return f.MidMTU
}

// Want is what a tool must conclude about a scenario (docs/testbed.md), in the
// shared vocabulary of docs/design.md.
type Want struct {
	Verdict   string
	PathMTU   int // largest IP packet, in bytes, that gets through
	Direction string
	// Also are further causes a tool must report beside Verdict, when the
	// path has more than one (S17: a black hole and a device).
	Also []string
}

// Scenario is a topology with its faults and the expected diagnosis.
type Scenario struct {
	Name     string   // short id, such as "S2"
	Slug     string   // descriptive name, such as "seed"
	Networks []Faults // one per client network; none means one clean network
	// Office joins every client network's r1 to one NAT router (instead
	// of a second router per network) that masquerades them all to one
	// public address, OfficeV4 and OfficeV6, with random ports: several
	// people in one office, each behind their own faulty path.
	Office bool
	Want   Want
}

// String returns "S2 seed".
func (s Scenario) String() string { return strings.TrimSpace(s.Name + " " + s.Slug) }

// seed is S2's fault set, the customer's story: a 1400-byte link whose
// routers send no ICMP and drop fragments.
var seed = Faults{MidMTU: 1400, NoICMP: true, DropFragments: true}

var presets = []Scenario{
	{Name: "S1", Slug: "clean", Networks: []Faults{{}},
		Want: Want{"ok", 1500, "none", nil}},
	{Name: "S2", Slug: "seed", Networks: []Faults{seed},
		Want: Want{"pmtud_blackhole", 1400, "both", nil}},
	{Name: "S3", Slug: "pmtud-works", Networks: []Faults{{MidMTU: 1400}},
		Want: Want{"pmtu_reduced", 1400, "none", nil}},
	{Name: "S4", Slug: "clamped", Networks: []Faults{{MidMTU: 1400, NoICMP: true, DropFragments: true, ClampMSS: 1360}},
		Want: Want{"pmtu_reduced", 1400, "none", nil}},
	{Name: "S5", Slug: "frag-drop", Networks: []Faults{{DropFragments: true}},
		Want: Want{"fragments_dropped", 1500, "both", nil}},
	{Name: "S6", Slug: "v6-seed", Networks: []Faults{{MidMTU: 1280, NoICMP: true, DropFragments: true}},
		Want: Want{"pmtud_blackhole", 1280, "both", nil}},
	{Name: "S7", Slug: "upstream-only", Networks: []Faults{{UpLimit: 1400}},
		Want: Want{"pmtud_blackhole", 1400, "upstream", nil}},
	{Name: "S8", Slug: "downstream-only", Networks: []Faults{{DownLimit: 1400}},
		Want: Want{"pmtud_blackhole", 1400, "downstream", nil}},
	{Name: "S9", Slug: "lossy", Networks: []Faults{{LossPerMille: 10}},
		Want: Want{"ok", 1500, "none", nil}},

	// Content, not size: a device on r1 (package middlebox) judges what the
	// ClientHello says. The verdict names are the ones proposed to
	// diagnose for issue 18; S15's exists already.
	{Name: "S13", Slug: "pq-reject", Networks: []Faults{{Device: middlebox.PQReject}},
		Want: Want{VerdictPQRejected, 1500, "upstream", nil}},
	{Name: "S14", Slug: "mldsa-reject", Networks: []Faults{{Device: middlebox.MLDSAReject}},
		Want: Want{VerdictMLDSARejected, 1500, "upstream", nil}},
	{Name: "S15", Slug: "split-intolerant", Networks: []Faults{{Device: middlebox.SplitIntolerant}},
		Want: Want{"clienthello_split_intolerant", 1500, "upstream", nil}},
	{Name: "S16", Slug: "length-window", Networks: []Faults{{Device: middlebox.LengthWindow}},
		Want: Want{VerdictLengthRejected, 1500, "upstream", nil}},
	{Name: "S17", Slug: "both", Networks: []Faults{{MidMTU: 1400, NoICMP: true, DropFragments: true, Device: middlebox.PQReject}},
		Want: Want{"pmtud_blackhole", 1400, "both", []string{VerdictPQRejected}}},
}

// Verdicts proposed for the content scenarios (issue 18): diagnose declares
// the vocabulary; these strings follow it once it does.
const (
	VerdictPQRejected     = "clienthello_pq_rejected"
	VerdictMLDSARejected  = "clienthello_mldsa_rejected"
	VerdictLengthRejected = "clienthello_length_rejected"
)

// Presets returns the scenarios of docs/testbed.md: S1 to S9 (size) and S13
// to S17 (content).
func Presets() []Scenario {
	out := make([]Scenario, len(presets))
	for i, p := range presets {
		out[i] = p
		out[i].Networks = append([]Faults(nil), p.Networks...)
		out[i].Want.Also = append([]string(nil), p.Want.Also...)
	}
	return out
}

// HasDevice reports whether any client network of s has a middlebox.
func (s Scenario) HasDevice() bool {
	for _, f := range s.Networks {
		if f.Device != "" {
			return true
		}
	}
	return false
}

// LookupPreset returns the preset named by its id ("S2") or slug ("seed"),
// case-insensitively.
func LookupPreset(name string) (Scenario, error) {
	for _, p := range Presets() {
		if strings.EqualFold(name, p.Name) || strings.EqualFold(name, p.Slug) {
			return p, nil
		}
	}
	return Scenario{}, fmt.Errorf("testnet: no preset %q (want S1-S9, S13-S17 or a slug such as %q)", name, "seed")
}

// Preset is LookupPreset for names fixed in code: it panics on a typo.
func Preset(name string) Scenario {
	s, err := LookupPreset(name)
	if err != nil {
		panic(err)
	}
	return s
}

// gsoLines keep the sender of a size-limited direction from handing the
// path GSO super-packets: veth passes them unsegmented to the next
// namespace, where the limit's nft rule would see one packet of many
// segments' size and drop segments that are each under the limit. With
// gso_max_segs 1 on the sender's link, every packet leaves wire-sized.
func (Faults) gsoLines(dev string, limit int) []string {
	if limit <= 0 {
		return nil
	}
	return []string{"link set dev " + dev + " gso_max_segs 1"}
}
