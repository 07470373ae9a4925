package flow

import (
	"net/netip"
	"testing"
)

// TestTableChains checks the flow table's key (the same either way round,
// an IPv4 address and its IPv4-mapped form alike, seeded) and that flows
// whose keys collide are told apart, found and removed.
func TestTableChains(t *testing.T) {
	a, b := netip.MustParseAddrPort("198.51.100.2:40000"), netip.MustParseAddrPort("203.0.113.10:443")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(a.Addr().As16()), a.Port())
	if EndpointsHash(1, a, b) != EndpointsHash(1, b, a) || EndpointsHash(1, a, b) != EndpointsHash(1, mapped, b) ||
		EndpointsHash(1, a, b) == EndpointsHash(2, a, b) {
		t.Error("key differs by direction or address form, or ignores the seed")
	}
	if !SameEndpoint(a, mapped) || SameEndpoint(a, b) || SameEndpoint(a, netip.AddrPortFrom(a.Addr(), 1)) {
		t.Error("SameEndpoint: an address and its mapped form must match, other addresses and ports must not")
	}
	tr := NewTracker(Config{})
	const h = 42 // three flows with one key
	ends := [][2]netip.AddrPort{{a, b}, {netip.MustParseAddrPort("[2001:db8::1]:5"), b}, {a, netip.MustParseAddrPort("192.0.2.1:443")}}
	var slots []int32
	for _, e := range ends {
		i := tr.alloc(h, 0)
		f := tr.at(i)
		f.client, f.server = e[0], e[1]
		slots = append(slots, i)
	}
	for n, e := range ends {
		if i, ok := tr.lookup(h, e[1], e[0]); !ok || i != slots[n] {
			t.Fatalf("flow %d: lookup gave %d %v", n, i, ok)
		}
	}
	if tr.Stats().Open != 3 {
		t.Fatalf("open %d, want 3", tr.Stats().Open)
	}
	tr.release(slots[1]) // the middle of the chain
	if _, ok := tr.lookup(h, ends[1][0], ends[1][1]); ok {
		t.Error("released flow still found")
	}
	for _, n := range []int{0, 2} {
		if i, ok := tr.lookup(h, ends[n][0], ends[n][1]); !ok || i != slots[n] {
			t.Errorf("flow %d lost after another was released", n)
		}
	}
	tr.release(slots[2]) // the head
	tr.release(slots[0])
	if _, ok := tr.table[h]; ok || tr.Stats().Open != 0 {
		t.Errorf("table not empty: open %d", tr.Stats().Open)
	}
}
