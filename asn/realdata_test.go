package asn_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/internal/asntest"
)

// knownAnswers are stable facts about the public routing table.
var knownAnswers = []struct {
	ip  string
	asn uint32
	org string // substring, "" to skip
}{
	{"8.8.8.8", 15169, "Google"},
	{"1.1.1.1", 13335, "Cloudflare"},
	{"9.9.9.9", 19281, "Quad9"},
	{"2001:4860:4860::8888", 15169, "Google"},
	{"::ffff:8.8.8.8", 15169, "Google"},
	{"fe80::1%eth0", 0, ""},
	{"192.0.2.1", 0, ""},
	{"2001:db8::1", 0, ""},
}

// TestRealData imports the @ip-location-db/asn npm package as is and checks
// known answers.
func TestRealData(t *testing.T) {
	tgz := asntest.IPLocationDB(t)
	db := filepath.Join(t.TempDir(), "asn.db")
	start := time.Now()
	meta, err := asn.Import(db, []asn.Input{{Path: tgz}}, asn.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %s in %v: %d IPv4 and %d IPv6 ranges, %d overlaps resolved",
		filepath.Base(tgz), time.Since(start).Round(time.Millisecond), meta.V4Ranges, meta.V6Ranges, meta.Overlaps)
	if len(meta.Sources) != 2 || meta.V4Ranges < 100000 || meta.V6Ranges < 10000 {
		t.Errorf("metadata %+v: want the IPv4 and IPv6 files with many ranges each", meta)
	}
	if !strings.Contains(meta.Attribution(), "CC BY 4.0") || !strings.Contains(meta.Attribution(), "db-ip.com") {
		t.Errorf("attribution %q lacks the licence or DB-IP", meta.Attribution())
	}
	r, err := asn.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range knownAnswers {
		got := r.Lookup(netip.MustParseAddr(k.ip))
		if got.ASN != k.asn || (k.asn != 0) != got.Found || !strings.Contains(got.Org, k.org) {
			t.Errorf("%s: AS%d %q found=%v, want AS%d %q", k.ip, got.ASN, got.Org, got.Found, k.asn, k.org)
		}
		if got.Found && (!got.Prefix.Contains(got.Addr) || got.First.Compare(got.Prefix.Addr()) > 0) {
			t.Errorf("%s: prefix %s, range %s-%s do not hold the address", k.ip, got.Prefix, got.First, got.Last)
		}
	}
}
