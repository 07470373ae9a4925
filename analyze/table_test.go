package analyze

import (
	"net/netip"
	"testing"
)

// TestEndpointsKey checks the flow table's key: the same either way round,
// an IPv4 address and its IPv4-mapped form alike (as As16 sees them), and
// a lookup that tells flows with colliding keys apart.
func TestEndpointsKey(t *testing.T) {
	a, b := netip.MustParseAddrPort("198.51.100.2:40000"), netip.MustParseAddrPort("203.0.113.10:443")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	if endpointsHash(1, a, b) != endpointsHash(1, b, a) || endpointsHash(1, a, b) != endpointsHash(1, mapped, b) || endpointsHash(1, a, b) == endpointsHash(2, a, b) {
		t.Error("key differs by direction or by address form")
	}
	if !sameEndpoint(a, mapped) || sameEndpoint(a, b) || sameEndpoint(a, netip.AddrPortFrom(a.Addr(), 1)) {
		t.Error("sameEndpoint")
	}
	tb := newTable(Limits{}.withDefaults(), func(*flowState) bool { return false })
	f1 := &flowState{client: a, server: b}
	f2 := &flowState{client: netip.MustParseAddrPort("[2001:db8::1]:5"), server: b}
	for _, f := range []*flowState{f1, f2} {
		f.hash = 7 // collide
		f.next = tb.flows[7]
		tb.flows[7] = f
	}
	tb.flows[endpointsHash(tb.seed, a, b)] = tb.flows[7]
	if tb.lookup(b, mapped) != f1 {
		t.Error("lookup of the first flow")
	}
	tb.unlink(f2)
	if tb.flows[7] != f1 || f1.next != nil {
		t.Error("unlink")
	}
}
