package craftpcap

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// StalledFlight loses the segments over the MTU, and only those: the
// client acknowledges what arrived selectively, four times (once for the
// flight, once per retransmission), and the server retransmits the first
// lost segment.
func TestStalledFlight(t *testing.T) {
	ts := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		client string
		mtu    int
		// sack is the SACK block relative to the server's first flight
		// byte, none when nothing arrived.
		sack [][2]uint32
	}{
		{"198.51.100.1:40000", 1300, [][2]uint32{{2920, 3474}}},
		{"[2001:db8:1::1]:40000", 1300, [][2]uint32{{2880, 3474}}},
		{"198.51.100.1:40000", 594, [][2]uint32{{2920, 3474}}}, // the tail's packet is 594 bytes
		{"198.51.100.1:40000", 593, nil},
		{"[2001:db8:1::1]:40000", 654, [][2]uint32{{2880, 3474}}},
		{"[2001:db8:1::1]:40000", 653, nil},
	} {
		cl := netip.MustParseAddrPort(tc.client)
		c := NewConversations(t, 1, netip.MustParseAddrPort("203.0.113.10:443"), netip.MustParseAddrPort("[2001:db8::10]:443"))
		c.StalledFlight(ts, cl, tc.mtu)
		var first uint32 // the server's first flight byte
		var acks, retrans, resets int
		for _, p := range c.pkts {
			s := p.s
			switch {
			case s.Flags&FlagSYN != 0 && s.Src != cl:
				first = s.Seq + 1
			case s.Flags&FlagRST != 0:
				resets++
			case s.Src != cl && len(s.Payload) > 0:
				if s.Seq == first && p.ts.After(ts.Add(time.Second)) {
					retrans++
				}
			case s.Src == cl && len(s.Payload) == 0 && s.Ack == first && p.ts.After(ts.Add(21*time.Millisecond)):
				acks++
				var sack [][2]uint32
				for _, b := range s.SACK {
					sack = append(sack, [2]uint32{b[0] - first, b[1] - first})
				}
				if !reflect.DeepEqual(sack, tc.sack) {
					t.Errorf("%s mtu %d: SACK %v, want %v", tc.client, tc.mtu, sack, tc.sack)
				}
			}
		}
		if acks != 4 || retrans != 3 || resets != 1 {
			t.Errorf("%s mtu %d: %d acknowledgements, %d retransmissions, %d resets; want 4, 3, 1", tc.client, tc.mtu, acks, retrans, resets)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic with an MTU every segment fits in")
		}
	}()
	NewConversations(t, 1, netip.MustParseAddrPort("203.0.113.10:443")).StalledFlight(ts, netip.MustParseAddrPort("198.51.100.1:40000"), 1500)
}
