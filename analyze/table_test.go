package analyze

import (
	"net/netip"
	"testing"

	"github.com/mtuscope/mtuscope/flow"
)

// TestTableLookupChains checks that the analyzer's table (keyed by
// flow.EndpointsHash, tested in package flow) tells flows with colliding
// keys apart, finds one by its IPv4-mapped form, and unlinks one.
func TestTableLookupChains(t *testing.T) {
	a, b := netip.MustParseAddrPort("198.51.100.2:40000"), netip.MustParseAddrPort("203.0.113.10:443")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	tb := newTable(Limits{}.withDefaults(), func(*flowState) bool { return false })
	f1 := &flowState{client: a, server: b}
	f2 := &flowState{client: netip.MustParseAddrPort("[2001:db8::1]:5"), server: b}
	for _, f := range []*flowState{f1, f2} {
		f.hash = 7 // collide
		f.next = tb.flows[7]
		tb.flows[7] = f
	}
	tb.flows[flow.EndpointsHash(tb.seed, a, b)] = tb.flows[7]
	if tb.lookup(b, mapped) != f1 {
		t.Error("lookup of the first flow")
	}
	tb.unlink(f2)
	if tb.flows[7] != f1 || f1.next != nil {
		t.Error("unlink")
	}
}
