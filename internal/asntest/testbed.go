package asntest

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/mtuscope/mtuscope/asn"
)

// WriteTestbed writes an ASN database that maps the testbed's client network
// i (198.51.100.16i/28 and 2001:db8:100:i::/64, see internal/testnet) to
// AS firstASN+i, organisation "Customer i+1", for i < networks.
func WriteTestbed(t testing.TB, path string, firstASN uint32, networks int) {
	t.Helper()
	orgs := make([]string, networks)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("Customer %d", i+1)
	}
	WriteTestbedOrgs(t, path, firstASN, orgs...)
}

// WriteTestbedOrgs writes the database of WriteTestbed with one network per
// organisation name, network i named orgs[i].
func WriteTestbedOrgs(t testing.TB, path string, firstASN uint32, orgs ...string) {
	t.Helper()
	var rs []asn.Range
	for i, org := range orgs {
		as := firstASN + uint32(i)
		rs = append(rs,
			asn.Range{First: netip.AddrFrom4([4]byte{198, 51, 100, byte(16 * i)}), Last: netip.AddrFrom4([4]byte{198, 51, 100, byte(16*i + 15)}), ASN: as, Org: org},
			asn.Range{First: netip.MustParseAddr(fmt.Sprintf("2001:db8:100:%x::", i)), Last: netip.MustParseAddr(fmt.Sprintf("2001:db8:100:%x:ffff:ffff:ffff:ffff", i)), ASN: as, Org: org})
	}
	tab, err := asn.Build([]asn.Source{{Name: "testbed", Format: asn.FormatCSV, Ranges: rs}}, asn.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tab.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := asn.WriteAtomic(path, b); err != nil {
		t.Fatal(err)
	}
}
