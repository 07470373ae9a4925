package diagnose

import (
	"strings"
	"testing"
)

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

// TestPassiveFixesFollowTheBracket: a narrow passive bracket gives fixes
// with numbers; a wide one (only a 530-byte tail seen to pass) must not
// turn its lower end into an MSS of 490 and a tunnel MTU of 530, but clamp
// to the router's route MTU and name the bracket.
func TestPassiveFixesFollowTheBracket(t *testing.T) {
	base := PassiveEvidence{Family: 4, Outcomes: map[Outcome]int{StalledServerFlight: 20, Completed: 0}, StalledDown: 20,
		Significant: true, FlightBytes: 3314}
	commands := func(d Diagnosis) string {
		var b strings.Builder
		for _, f := range d.Fixes {
			b.WriteString(f.Code + ": " + f.Title + "\n")
			for _, c := range f.Commands {
				b.WriteString("  " + c + "\n")
			}
		}
		return b.String()
	}

	narrow := base
	narrow.DownDelivered, narrow.DownLost = 1400, 1460
	got := commands(Passive(narrow))
	for _, want := range []string{"maxseg size set 1360", "--set-mss 1360", "ip link set dev TUNNEL mtu 1400", "(3 full segments at this path's MSS)"} {
		if !strings.Contains(got, want) {
			t.Errorf("narrow bracket: no %q in\n%s", want, got)
		}
	}

	wide := base
	wide.DownDelivered, wide.DownLost = 530, 1500
	d := Passive(wide)
	got = commands(d)
	for _, want := range []string{"maxseg size set rt mtu", "--clamp-mss-to-pmtu", "between 530 and 1499 bytes", "sysctl -w net.ipv4.tcp_mtu_probing=1", "(several full-size segments)"} {
		if !strings.Contains(got, want) {
			t.Errorf("wide bracket: no %q in\n%s", want, got)
		}
	}
	for _, bad := range []string{"490", "mtu 530", "tunnel_mtu"} {
		if strings.Contains(got, bad) {
			t.Errorf("wide bracket: %q in\n%s", bad, got)
		}
	}
	if d.Verdict != VerdictBlackhole || d.PathMTU != 530 {
		t.Errorf("wide bracket: %s %d", d.Verdict, d.PathMTU)
	}
}
