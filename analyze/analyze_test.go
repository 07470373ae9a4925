package analyze

import (
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/diagnose"
)

// TestServerSideStall is the story's case from a server-side capture
// alone: the small segments and the flight's tail are acknowledged, the
// full-size ones are retransmitted and never acknowledged, no ICMP.
func TestServerSideStall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		clamp     bool
		pathMTU   int
		delivered int
	}{
		// The largest packet through is the flight's tail: 470 to 1499
		// bytes is no path MTU.
		{"stall only", false, 0, 470},
		{"with a clamped connection", true, 1400, 1400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := File(serverSideStall(t, tc.clamp).file("server.pcap"), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != diagnose.VerdictBlackhole || res.Direction != diagnose.Downstream {
				t.Fatalf("verdict %s %s, want pmtud_blackhole downstream; findings %+v", res.Verdict, res.Direction, res.Findings)
			}
			if res.PathMTU != tc.pathMTU || res.PathMTURange.Delivered != tc.delivered || res.PathMTURange.Lost != 1500 {
				t.Errorf("path MTU %d, bracket %+v; want %d, %d delivered and 1500 lost", res.PathMTU, res.PathMTURange, tc.pathMTU, tc.delivered)
			}
			if res.Outcomes[diagnose.StalledServerFlight] != 1 {
				t.Errorf("outcomes %v, want one stalled_server_flight", res.Outcomes)
			}
			// Two full-size segments in the super-segment, four retransmissions.
			silent := 0
			for _, l := range res.Lost {
				if l.Direction != diagnose.Downstream || l.IPSize != 1500 || l.How != "never_acknowledged" {
					t.Errorf("lost %+v, want downstream 1500-byte packets never acknowledged", l)
				}
				silent++
			}
			if silent != 6 {
				t.Errorf("%d lost packets, want 6: %+v", silent, res.Lost)
			}
			if res.ICMPTooBig != 0 || res.Downstream.TooBigReachedSender != 0 {
				t.Errorf("ICMP counted where there was none: %d", res.ICMPTooBig)
			}
			var hs *Handshake
			for i := range res.Handshakes {
				if res.Handshakes[i].Client == testClient {
					hs = &res.Handshakes[i]
				}
			}
			if hs == nil || hs.HelloBytes != 517 || hs.Down.Lost != 1500 || hs.Down.Delivered != 470 || hs.Retransmits != 4 {
				t.Errorf("handshake evidence %+v", hs)
			}
			if res.StalledHandshakes() != 1 {
				t.Errorf("%d ladders, want 1", res.StalledHandshakes())
			}
			var svg, text strings.Builder
			if err := res.WriteSVG(&svg); err != nil {
				t.Fatal(err)
			}
			res.WriteLadderText(&text)
			// Six lost packets drawn as crosses, labelled; the tail and its SACK arrive.
			if n := strings.Count(svg.String(), "LOST: 1500 B"); n != 6 || !strings.Contains(svg.String(), "ACK with SACK 2896-3314") {
				t.Errorf("SVG shows %d lost 1500-byte packets, want 6:\n%s", n, svg.String())
			}
			if n := strings.Count(text.String(), "X------------"); n != 6 {
				t.Errorf("text ladder shows %d lost packets, want 6:\n%s", n, text.String())
			}
		})
	}
}

// TestWireSplit checks that a super-segment is cut at the MSS.
func TestWireSplit(t *testing.T) {
	var got []span
	wireSplit(span{Start: 0, End: 3314}, 1448, func(s span) { got = append(got, s) })
	want := []span{{Start: 0, End: 1448}, {Start: 1448, End: 2896}, {Start: 2896, End: 3314}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
