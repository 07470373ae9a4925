package diagnose

import (
	"fmt"
	"strings"
)

// PassiveEvidence is what server-side captures showed about the TLS
// handshakes of one client network (the monitor fills it from the flow
// tracker's handshakes). Nothing here was sent on purpose: the sizes are
// whatever the clients and the server happened to send.
type PassiveEvidence struct {
	// Family is 4 or 6 (the family most of the handshakes used).
	Family int `json:"family"`
	// Outcomes counts handshakes by outcome.
	Outcomes map[Outcome]int `json:"outcomes"`
	// StalledUp counts handshakes whose ClientHello stalled with evidence
	// of loss (its missing part was sent or retransmitted); StalledDown
	// those whose server flight stalled the same way.
	StalledUp   int `json:"stalled_up"`
	StalledDown int `json:"stalled_down"`
	// Significant is the monitor's judgement that the stalls are too many
	// to be bad luck (its statistics: see the monitor package). Without it
	// stalls are reported as findings, never as a black hole.
	Significant bool `json:"significant"`
	// UpDelivered and DownDelivered are the largest IP packets seen to get
	// through in each direction; UpLost and DownLost the smallest ones that
	// stalled a handshake (0: none).
	UpDelivered   int `json:"up_delivered"`
	UpLost        int `json:"up_lost"`
	DownDelivered int `json:"down_delivered"`
	DownLost      int `json:"down_lost"`
	// TooBig counts ICMP too-big messages quoting these handshakes and
	// TooBigMTU the smallest MTU they reported.
	TooBig    int `json:"icmp_too_big"`
	TooBigMTU int `json:"icmp_mtu"`
	// HelloBytes is the largest ClientHello seen; PQHellos how many hellos
	// carried a post-quantum key share.
	HelloBytes int `json:"hello_bytes"`
	PQHellos   int `json:"pq_hellos"`
	// SplitFailed counts handshakes whose ClientHello came in several
	// segments, arrived whole, and was answered by a reset or an alert;
	// SplitCompleted the split hellos that completed and SingleCompleted
	// the one-segment hellos that completed.
	SplitFailed     int `json:"split_failed"`
	SplitCompleted  int `json:"split_completed"`
	SingleCompleted int `json:"single_completed"`
	// FlightBytes is the largest server flight seen.
	FlightBytes int `json:"flight_bytes"`
}

// passiveMinFailures is how many failed handshakes with no completed one
// make tls_failed or clienthello_split_intolerant: fewer is bad luck.
const passiveMinFailures = 5

// Passive concludes about one client network from what server-side
// captures showed: the same verdicts, directions, wording and fixes as
// Diagnose gives the probe and the page.
func Passive(p PassiveEvidence) (d Diagnosis) {
	d = Diagnosis{Verdict: VerdictOK, Direction: None, Findings: []Finding{}, Fixes: []Fix{}}
	ev := Evidence{Family: p.Family, Connected: true, FlightBytes: p.FlightBytes}
	defer func() { d.Fixes = fixesFor(ev, &d) }()
	completed := p.Outcomes[Completed]
	total := 0
	for _, n := range p.Outcomes {
		total += n
	}
	d.UpstreamMTU, d.DownstreamMTU = p.UpDelivered, p.DownDelivered
	stalls := p.StalledUp + p.StalledDown
	switch {
	case p.Significant && stalls > 0:
		d.Verdict = VerdictBlackhole
		switch {
		case p.StalledUp > 0 && p.StalledDown > 0:
			d.Direction = Both
			d.PathMTU = minPositive(p.UpDelivered, p.DownDelivered)
		case p.StalledUp > 0:
			d.Direction = Upstream
			d.PathMTU = p.UpDelivered
		default:
			d.Direction = Downstream
			d.PathMTU = p.DownDelivered
		}
		evd := map[string]any{
			"upstream_max_pass": p.UpDelivered, "upstream_min_fail": p.UpLost,
			"downstream_max_pass": p.DownDelivered, "downstream_min_fail": p.DownLost,
			"stalled_upstream": p.StalledUp, "stalled_downstream": p.StalledDown,
			"handshakes": total, "completed": completed, "icmp_too_big": p.TooBig, "stalled": stalls,
			"mss": d.PathMTU - IPHeader(p.Family),
		}
		d.add(string(VerdictBlackhole), p.blackholeDetail(d.Direction, stalls, total, completed), evd)
		if lost := minPositive(p.UpLost, p.DownLost); lost > 0 {
			d.noteBracket(d.PathMTU, lost, fmt.Sprintf("the handshakes showed no size between %d and %d bytes getting through or being lost",
				d.PathMTU+1, lost-1), map[string]any{"untested_from": d.PathMTU + 1, "untested_to": lost - 1})
		}
		if p.PQHellos > 0 && p.StalledUp > 0 {
			d.add(CodeHelloSizeBand, fmt.Sprintf("%d of the ClientHellos carried a post-quantum key share (the largest hello was %d bytes): "+
				"such hellos need a full-size segment and stall on this path.", p.PQHellos, p.HelloBytes),
				map[string]any{"pq_hellos": p.PQHellos, "hello_bytes": p.HelloBytes})
		}
		if p.FlightBytes > 0 && p.StalledDown > 0 {
			d.add(CodeLargeFlight, fmt.Sprintf("The server's first flight is %d bytes: it needs full-size packets towards the client.", p.FlightBytes),
				map[string]any{"flight_bytes": p.FlightBytes})
		}
	case p.SplitFailed >= passiveMinFailures && p.SplitCompleted == 0 && p.SingleCompleted > 0:
		d.Verdict, d.Direction = VerdictSplitIntolerant, Upstream
		d.add(string(VerdictSplitIntolerant), fmt.Sprintf("%d ClientHellos that came in several segments arrived whole and were "+
			"answered with a reset or an alert, while %d one-segment hellos completed: something on the path refuses "+
			"ClientHellos split across segments.", p.SplitFailed, p.SingleCompleted),
			map[string]any{"split_failed": p.SplitFailed, "single_completed": p.SingleCompleted})
	case completed == 0 && total-stalls-p.Outcomes[NoClientHello] >= passiveMinFailures:
		d.Verdict, d.Direction = VerdictTLSFailed, Unknown
		d.add(string(VerdictTLSFailed), fmt.Sprintf("None of %d handshakes from this network completed, and they failed "+
			"without stalling (%s): the server or something in front of it refuses them; this is not a path MTU problem.",
			total, outcomeList(p.Outcomes)), map[string]any{"outcomes": p.Outcomes})
	case p.TooBig > 0 && p.TooBigMTU > 0 && completed > 0:
		d.Verdict, d.PathMTU = VerdictPMTUReduced, p.TooBigMTU
		d.add(CodePMTUDWorks, fmt.Sprintf("Routers on this network's path sent %d ICMP too-big messages (MTU %d) and "+
			"the handshakes still completed: path MTU discovery works.", p.TooBig, p.TooBigMTU),
			map[string]any{"icmp_too_big": p.TooBig, "icmp_mtu": p.TooBigMTU})
	}
	if d.Verdict == VerdictOK && stalls > 0 {
		d.add("isolated_stalls", fmt.Sprintf("%d of %d handshakes stalled, too few against %d completed to point at the path.",
			stalls, total, completed), map[string]any{"stalled": stalls, "handshakes": total, "completed": completed})
	}
	return d
}

func (p PassiveEvidence) blackholeDetail(dir Direction, stalls, total, completed int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d handshakes from this network stalled (%d completed). ", stalls, total, completed)
	through := func(n int) string {
		if n > 0 {
			return fmt.Sprintf("packets of %d bytes got through", n)
		}
		return "no packet was seen to get through"
	}
	if dir == Upstream || dir == Both {
		fmt.Fprintf(&b, "From the client to the server, %s and a ClientHello's %s never arrived (%d handshakes). ",
			through(p.UpDelivered), sizeOrFull(p.UpLost), p.StalledUp)
	}
	if dir == Downstream || dir == Both {
		fmt.Fprintf(&b, "From the server to the client, %s and the server flight's %s were never acknowledged (%d handshakes). ",
			through(p.DownDelivered), sizesOrFull(p.DownLost), p.StalledDown)
	}
	if p.TooBig == 0 {
		b.WriteString("No ICMP too-big message came back: ")
	} else {
		fmt.Fprintf(&b, "Only %d ICMP too-big messages came back: ", p.TooBig)
	}
	b.WriteString("larger packets vanish on this network's path, so TCP connects but the TLS handshake stalls until it times out.")
	return b.String()
}

func sizeOrFull(n int) string {
	if n > 0 {
		return fmt.Sprintf("%d-byte segment", n)
	}
	return "full-size segment"
}

func sizesOrFull(n int) string {
	if n > 0 {
		return fmt.Sprintf("%d-byte segments", n)
	}
	return "full-size segments"
}

func outcomeList(m map[Outcome]int) string {
	var parts []string
	for _, o := range []Outcome{Completed, StalledClientHello, StalledServerFlight, NoClientHello, Alert, Reset, Timeout, NotTLS} {
		if m[o] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, m[o]))
		}
	}
	return strings.Join(parts, ", ")
}
