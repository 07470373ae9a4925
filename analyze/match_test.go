package analyze

import (
	"net/netip"
	"testing"
)

// sharedKeyFlows are n client-side and n server-side records whose SYNs
// all carry one client ISN and one TCP timestamp, as crafted traffic (or a
// client with a broken random source) can: the server's ISNs differ
// between the captures (a NAT that rewrites them both ways), so no flow
// pairs by both ISNs and each is looked up by the shared keys.
// With noSynAck the server capture holds no SYN-ACK: each flow is looked
// up by the client's ISN alone.
func sharedKeyFlows(n int, noSynAck bool) (cl, sv []*record) {
	mk := func(i int, sisn uint32) *record {
		f := &flowState{family: 4, client: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), uint16(1024+i%60000)),
			server: netip.MustParseAddrPort("203.0.113.10:443")}
		f.syn = synInfo{seen: true, isn: 1000, mss: 1460, tsOK: true, tsVal: 777, t: int64(i)}
		f.synAck = synInfo{seen: true, isn: sisn, t: int64(i) + 1}
		return &record{f: f}
	}
	for i := range n {
		cl = append(cl, mk(i, uint32(i)))
		sv = append(sv, mk(i, uint32(i)+1<<31))
		sv[i].f.synAck.seen = !noSynAck
	}
	return cl, sv
}

// TestMatchSharedKeyLinear pairs flows that all share one client ISN and
// SYN timestamp: every flow is paired (by timestamp), and the candidates
// looked at grow linearly with the flows, not with their square (4 min
// for 50,000 such flows before; a few per flow now).
func TestMatchSharedKeyLinear(t *testing.T) {
	for _, tc := range []struct {
		n        int
		noSynAck bool
	}{{1000, false}, {8000, false}, {8000, true}} {
		n := tc.n
		cl, sv := sharedKeyFlows(n, tc.noSynAck)
		m := match(cl, sv)
		wantTS := n
		if tc.noSynAck {
			wantTS = 0
		}
		if len(m.pairs) != n || m.byTS != wantTS || len(m.unmatchedClient)+len(m.unmatchedServer) != 0 {
			t.Fatalf("%d flows: %d pairs (%d by timestamp), unmatched %d and %d", n, len(m.pairs), m.byTS, len(m.unmatchedClient), len(m.unmatchedServer))
		}
		for i, p := range m.pairs {
			if p.c != cl[i] || p.s != sv[i] {
				t.Fatalf("%d flows: pair %d is not the flows in capture order", n, i)
			}
		}
		t.Logf("%d flows: %d candidates looked at (%.1f a flow)", n, m.steps, float64(m.steps)/float64(n))
		if m.steps > 4*n {
			t.Errorf("%d flows: %d candidates looked at, want at most %d (linear)", n, m.steps, 4*n)
		}
	}
}

// BenchmarkMatchSharedKey pairs 50,000 flows that share one client ISN
// and SYN timestamp.
func BenchmarkMatchSharedKey(b *testing.B) {
	cl, sv := sharedKeyFlows(50000, false)
	for b.Loop() {
		match(cl, sv)
	}
}
