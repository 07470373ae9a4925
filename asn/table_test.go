package asn_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/asn"
)

func rng(first, last string, n uint32, org string) asn.Range {
	return asn.Range{First: netip.MustParseAddr(first), Last: netip.MustParseAddr(last), ASN: n, Org: org}
}

func build(t *testing.T, strict bool, rs ...asn.Range) *asn.Table {
	t.Helper()
	tb, err := asn.Build([]asn.Source{{Name: "test", Ranges: rs}}, asn.BuildOptions{Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestTableLookup(t *testing.T) {
	tb := build(t, true,
		rng("0.0.0.0", "0.0.0.255", 1, "first"),
		rng("8.8.12.0", "8.8.29.255", 3356, "Level 3"),
		rng("8.8.8.0", "8.8.8.255", 15169, "Google LLC"),
		rng("255.255.255.0", "255.255.255.255", 2, "last"),
		rng("2001:4860::", "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff", 15169, "Google LLC"),
		rng("ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 3, "v6 last"),
		rng("10.0.0.0", "10.0.0.255", 0, "not routed"),
	)
	for _, tc := range []struct {
		ip, prefix, first, last string
		asn                     uint32
	}{
		{"0.0.0.0", "0.0.0.0/24", "0.0.0.0", "0.0.0.255", 1},
		{"0.0.1.0", "0.0.1.0/24", "", "", 0},
		{"8.8.8.8", "8.8.8.0/24", "8.8.8.0", "8.8.8.255", 15169},
		{"8.8.8.7", "8.8.8.0/24", "8.8.8.0", "8.8.8.255", 15169},
		{"8.8.9.0", "8.8.9.0/24", "", "", 0},
		{"8.8.12.5", "8.8.12.0/22", "8.8.12.0", "8.8.29.255", 3356},
		{"8.8.16.1", "8.8.16.0/21", "8.8.12.0", "8.8.29.255", 3356},
		{"8.8.29.255", "8.8.28.0/23", "8.8.12.0", "8.8.29.255", 3356},
		{"10.0.0.1", "10.0.0.0/24", "", "", 0},
		{"255.255.255.255", "255.255.255.0/24", "255.255.255.0", "255.255.255.255", 2},
		{"::ffff:8.8.8.8", "8.8.8.0/24", "8.8.8.0", "8.8.8.255", 15169},
		{"2001:4860:4860::8888", "2001:4860::/32", "2001:4860::", "2001:4860:ffff:ffff:ffff:ffff:ffff:ffff", 15169},
		{"2001:4861::1", "2001:4861::/48", "", "", 0},
		{"fe80::1%eth0", "fe80::/48", "", "", 0},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff::/16", "ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 3},
		{"::", "::/48", "", "", 0},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			r := tb.Lookup(netip.MustParseAddr(tc.ip))
			if r.ASN != tc.asn || r.Found != (tc.asn != 0) || r.Prefix.String() != tc.prefix {
				t.Errorf("got AS%d found=%v %s, want AS%d %s", r.ASN, r.Found, r.Prefix, tc.asn, tc.prefix)
			}
			if tc.first != "" && (r.First.String() != tc.first || r.Last.String() != tc.last) {
				t.Errorf("range %s-%s, want %s-%s", r.First, r.Last, tc.first, tc.last)
			}
			if r.Addr.Zone() != "" || r.Addr.Is4In6() {
				t.Errorf("address %s not normalised", r.Addr)
			}
		})
	}
	if r := tb.Lookup(netip.Addr{}); r.Found || r.Prefix.IsValid() {
		t.Errorf("zero address: %+v", r)
	}
	if g := tb.Lookup(netip.MustParseAddr("8.8.8.8")).Group(); g != "AS15169" {
		t.Errorf("group %q", g)
	}
	if g := tb.Lookup(netip.MustParseAddr("192.0.2.9")).Group(); g != "192.0.2.0/24" {
		t.Errorf("fallback group %q", g)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		rs   []asn.Range
		want error
		msg  string
	}{
		{"reversed", []asn.Range{rng("8.8.8.255", "8.8.8.0", 1, "")}, nil, "reversed range"},
		{"mixed families", []asn.Range{rng("8.8.8.0", "2001::", 1, "")}, nil, "mixes IPv4 and IPv6"},
		{"overlap", []asn.Range{rng("1.0.0.0", "1.0.0.255", 1, ""), rng("1.0.0.128", "1.0.1.0", 2, "")}, asn.ErrOverlap, "test:7"},
		{"contained", []asn.Range{rng("1.0.0.0", "1.0.255.255", 1, ""), rng("1.0.0.128", "1.0.0.200", 2, "")}, asn.ErrOverlap, "AS2"},
		{"duplicate", []asn.Range{rng("2001::", "2001::ff", 1, ""), rng("2001::", "2001::ff", 1, "")}, asn.ErrOverlap, "2001::-2001::ff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.rs {
				tc.rs[i].Line = 6 + i
			}
			_, err := asn.Build([]asn.Source{{Name: "test", Ranges: tc.rs}}, asn.BuildOptions{Strict: true})
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestBuildResolvesOverlaps(t *testing.T) {
	tb := build(t, false,
		rng("10.0.0.0", "10.255.255.255", 1, "wide"),
		rng("10.1.0.0", "10.1.255.255", 2, "narrow"),
		rng("10.1.2.0", "10.1.2.255", 3, "narrower"),
		rng("214.95.0.0", "215.0.255.255", 749, "DoD"), // as in the real data
		rng("215.0.0.0", "215.1.3.255", 721, "DoD NIC"),
	)
	for ip, want := range map[string]uint32{
		"10.0.5.5": 1, "10.1.0.0": 2, "10.1.2.3": 3, "10.1.3.0": 2, "10.2.0.0": 1, "10.255.255.255": 1,
		"214.95.0.0": 749, "214.255.255.255": 749, "215.0.0.0": 721, "215.1.3.255": 721, "215.1.4.0": 0,
	} {
		if got := tb.Lookup(netip.MustParseAddr(ip)).ASN; got != want {
			t.Errorf("%s: AS%d, want AS%d", ip, got, want)
		}
	}
	if tb.Meta().Overlaps != 3 {
		t.Errorf("overlaps %d, want 3", tb.Meta().Overlaps)
	}
}

// TestTableMatchesLinearScan checks random disjoint ranges against a
// brute-force search, in both families, including the encode/decode trip.
func TestTableMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var rs []asn.Range
	for fam := range 2 {
		var x uint64 = 0
		for i := 0; i < 3000; i++ {
			x += uint64(r.IntN(1 << 20))
			n := uint64(r.IntN(1 << 16))
			rs = append(rs, asn.Range{First: addrN(fam, x), Last: addrN(fam, x+n), ASN: uint32(r.IntN(50)), Org: fmt.Sprint("org", r.IntN(50))})
			x += n + 1
		}
	}
	tb := build(t, true, rs...)
	b, err := tb.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := asn.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20000; i++ {
		fam := i % 2
		a := addrN(fam, r.Uint64N(3000<<20))
		var want asn.Range
		for _, x := range rs {
			if x.ASN != 0 && x.First.Compare(a) <= 0 && a.Compare(x.Last) <= 0 {
				want = x
			}
		}
		for _, tbl := range []*asn.Table{tb, dec} {
			got := tbl.Lookup(a)
			if got.ASN != want.ASN || got.Org != want.Org || got.Found && !got.Prefix.Contains(a) {
				t.Fatalf("%s: AS%d %q %s, want AS%d %q", a, got.ASN, got.Org, got.Prefix, want.ASN, want.Org)
			}
		}
	}
}

// addrN spreads x over the top of the space for IPv6 so that the 16-bit
// index is exercised.
func addrN(fam int, x uint64) netip.Addr {
	if fam == 0 {
		v := uint32(x)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	for i := 0; i < 8; i++ {
		b[2+i] = byte(x >> (8 * (7 - i)))
	}
	return netip.AddrFrom16(b)
}
