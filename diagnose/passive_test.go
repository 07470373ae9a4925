package diagnose

import "testing"

func TestPassive(t *testing.T) {
	cases := []struct {
		name string
		p    PassiveEvidence
		want Verdict
		dir  Direction
		mtu  int
	}{
		{"upstream stalls", PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{StalledClientHello: 12}, StalledUp: 12,
			Significant: true, UpDelivered: 1380, UpLost: 1500, DownDelivered: 1500, PQHellos: 12, HelloBytes: 1507},
			VerdictBlackhole, Upstream, 1380},
		{"downstream stalls", PassiveEvidence{Family: 6, Outcomes: map[Outcome]int{StalledServerFlight: 12, Completed: 1}, StalledDown: 12,
			Significant: true, UpDelivered: 600, DownDelivered: 1280, DownLost: 1500, FlightBytes: 3500},
			VerdictBlackhole, Downstream, 1280},
		{"both", PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{StalledServerFlight: 6, StalledClientHello: 6},
			StalledUp: 6, StalledDown: 6, Significant: true, UpDelivered: 1400, UpLost: 1500, DownDelivered: 620, DownLost: 1500},
			VerdictBlackhole, Both, 620},
		{"stalls not significant", PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{StalledServerFlight: 2, Completed: 300},
			StalledDown: 2, DownDelivered: 1500}, VerdictOK, None, 0},
		{"split hellos refused", PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{Reset: 8, Completed: 20},
			SplitFailed: 8, SingleCompleted: 20}, VerdictSplitIntolerant, Upstream, 0},
		{"refused without stalls", PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{Alert: 9}}, VerdictTLSFailed, Unknown, 0},
		{"four refusals are bad luck", PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{Alert: 4}}, VerdictOK, None, 0},
		{"pmtud works", PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{Completed: 9}, TooBig: 3, TooBigMTU: 1400},
			VerdictPMTUReduced, None, 1400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Passive(c.p)
			if d.Verdict != c.want || d.Direction != c.dir || d.PathMTU != c.mtu {
				t.Fatalf("got %s %s %d, want %s %s %d: %+v", d.Verdict, d.Direction, d.PathMTU, c.want, c.dir, c.mtu, d.Findings)
			}
			if c.want == VerdictBlackhole {
				if len(d.Fixes) < 2 || d.Fixes[0].Code != "clamp_mss" || d.Fixes[1].Code != "allow_icmp" {
					t.Errorf("fixes %+v", d.Fixes)
				}
				mss := c.mtu - IPHeader(c.p.Family)
				if got := d.Findings[0].Evidence["mss"]; got != mss {
					t.Errorf("mss %v, want %d", got, mss)
				}
			}
			if c.dir == Downstream && !hasFix(d.Fixes, "server_mtu_probing") {
				t.Errorf("downstream without tcp_mtu_probing: %+v", d.Fixes)
			}
		})
	}
}

func hasFix(fs []Fix, code string) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}
