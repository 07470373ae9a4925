package analyze

import (
	"net/netip"
	"sort"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// maxLostListed bounds the lost packets listed in a result.
const maxLostListed = 1000

// dirAgg is one direction's figures over the flows of a family.
type dirAgg struct {
	maxDelivered, minSilent            int
	lost, silent, signalled, recovered int
	tooBig                             int
	recoveredAt                        int // largest packet that got through where smaller packets recovered a loss
}

// famAgg is what the flows of one IP family showed.
type famAgg struct {
	flows, handshakes, completed int
	dir                          [2]dirAgg
	localMTU                     int
	flight                       int
	icmp                         []diagnose.ICMPSignal
	icmpSeen                     int
	tests                        []diagnose.SegmentTest // real outcomes, for a capture where nothing worked
}

// summary folds finished flows into the figures the verdict needs, without
// keeping the flows.
type summary struct {
	fam      [2]famAgg
	outcomes map[diagnose.Outcome]int
	lost     []LostPacket
	lostN    int
	tlsPorts map[uint16]bool
	icmp     []ICMPEvent
	icmpN    int
	frags    []FragPairs
	fragN    int
}

func newSummary() *summary {
	return &summary{outcomes: map[diagnose.Outcome]int{}, tlsPorts: map[uint16]bool{443: true}}
}

func famIndex(f uint8) int {
	if f == 6 {
		return 1
	}
	return 0
}

// isHandshake decides whether a flow counts as a TLS handshake attempt:
// its client spoke TLS first, or it is on a port where TLS was seen (443
// always) and the client's first bytes were not seen.
func (s *summary) isHandshake(r *record) bool {
	switch r.tls {
	case tlsYes:
		if len(s.tlsPorts) < 1024 {
			s.tlsPorts[r.f.server.Port()] = true
		}
		return true
	case tlsNo:
		return false
	}
	return s.tlsPorts[r.f.server.Port()]
}

// add folds one finished flow.
func (s *summary) add(r *record) {
	f := r.f
	a := &s.fam[famIndex(f.family)]
	a.flows++
	hdr := diagnose.IPHeader(int(f.family))
	if m := max(f.syn.mss, f.synAck.mss); m > 0 {
		a.localMTU = max(a.localMTU, m+hdr)
	}
	if s.isHandshake(r) {
		r.handshake = true
		a.handshakes++
		s.outcomes[r.hs.Outcome]++
		if r.hs.Outcome == diagnose.Completed {
			a.completed++
		}
		if r.hs.Outcome == diagnose.StalledServerFlight {
			a.flight = max(a.flight, r.hs.FlightBytes)
		}
		if len(a.tests) < 32 {
			a.tests = append(a.tests, diagnose.SegmentTest{UpSize: r.hs.Up.Delivered, DownSize: r.hs.Down.Delivered,
				Up: diagnose.Untested, Down: diagnose.Untested, Outcome: r.hs.Outcome, Detail: r.hs.Detail})
		}
	}
	for di := range 2 {
		d := &a.dir[di]
		sender := f
		if r.paired && di == down {
			sender = r.srv
		}
		for _, tb := range sender.tooBig {
			if int(tb.dir) == di {
				d.tooBig++
			}
		}
		ws := r.wire[di]
		for i := range ws {
			w := &ws[i]
			switch w.status {
			case delivered:
				d.maxDelivered = max(d.maxDelivered, w.ipLen)
			case lost:
				d.lost++
				switch {
				case w.signalled:
					d.signalled++
				case w.recovered:
					d.recovered++
					d.recoveredAt = max(d.recoveredAt, fillSize(ws, w))
				default:
					d.silent++
					if d.minSilent == 0 || w.ipLen < d.minSilent {
						d.minSilent = w.ipLen
					}
				}
				s.addLost(r, di, w)
			}
		}
	}
}

// fillSize is the largest delivered packet that carried bytes of a lost
// one later.
func fillSize(ws []wirePkt, l *wirePkt) int {
	n := 0
	for _, x := range ws {
		if x.status == delivered && x.t >= l.t && x.overlaps(l.span) {
			n = max(n, x.ipLen)
		}
	}
	return n
}

func (s *summary) addLost(r *record, di int, w *wirePkt) {
	s.lostN++
	if len(s.lost) >= maxLostListed {
		return
	}
	how := "never_acknowledged"
	switch {
	case r.paired:
		how = "not_seen_at_receiver"
	case w.inferred:
		how = "hole"
	}
	dir := diagnose.Upstream
	start := r.f.first
	if di == down {
		dir = diagnose.Downstream
		if r.paired {
			start = r.srv.first
		}
	}
	s.lost = append(s.lost, LostPacket{
		Direction: dir, IPSize: w.ipLen, Time: time.Unix(0, w.t).UTC(), TMS: float64(w.t-start) / 1e6,
		Flow: FlowID{r.f.client.String(), r.f.server.String()}, Seq: [2]uint32{w.start, w.end}, How: how,
		Retransmission: w.retrans, ICMPSignalled: w.signalled, RecoveredSmaller: w.recovered,
	})
}

// addCapture folds a capture's ICMP and fragment figures.
func (s *summary) addCapture(c *capResult) {
	s.icmpN += c.icmpN
	s.fragN += c.fragN
	for _, e := range c.icmp {
		fam := 4
		if e.from.Is6() && !e.from.Is4In6() {
			fam = 6
		}
		a := &s.fam[famIndex(uint8(fam))]
		a.icmpSeen++
		sig := diagnose.ICMPSignal{From: e.from.String(), MTU: e.mtu}
		if !containsSignal(a.icmp, sig) && len(a.icmp) < 16 {
			a.icmp = append(a.icmp, sig)
		}
		ev := ICMPEvent{Time: time.Unix(0, e.t).UTC(), From: e.from.String(), MTU: e.mtu, Quoted: e.quoted, Capture: c.path}
		if e.flow.src.IsValid() {
			ev.Flow = &FlowID{e.flow.src.String(), e.flow.dst.String()}
		}
		if len(s.icmp) < maxICMPKept {
			s.icmp = append(s.icmp, ev)
		}
	}
	for k, n := range c.frags {
		s.frags = append(s.frags, FragPairs{Src: k.src.String(), Dst: k.dst.String(), Count: n})
	}
	sort.Slice(s.frags, func(i, j int) bool { return s.frags[i].Count > s.frags[j].Count })
}

func containsSignal(ss []diagnose.ICMPSignal, s diagnose.ICMPSignal) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// evidence turns a family's figures into the evidence diagnose reads:
// every delivered packet size is a passed test in its direction, every
// size lost without explanation a failed one. A direction that lost
// nothing and carried only smaller packets than the other is left
// untested (nothing large was sent that way). When nothing was lost and
// no handshake completed, the handshakes themselves are the tests, so
// diagnose explains a server that fails at every size.
func (a *famAgg) evidence(family int) diagnose.Evidence {
	ev := diagnose.Evidence{Family: family, Connected: a.flows > 0}
	upA, downA := &a.dir[up], &a.dir[down]
	silent := upA.silent+downA.silent > 0
	if !silent && a.completed == 0 && len(a.tests) > 0 {
		ev.Segments = a.tests
		return ev
	}
	add := func(d, o *dirAgg, isUp bool, outcome diagnose.Outcome) {
		if d.maxDelivered > 0 && (d.silent > 0 || d.maxDelivered >= o.maxDelivered) {
			t := diagnose.SegmentTest{Up: diagnose.Untested, Down: diagnose.Untested, Outcome: diagnose.Completed}
			if isUp {
				t.UpSize, t.Up = d.maxDelivered, diagnose.Passed
			} else {
				t.DownSize, t.Down = d.maxDelivered, diagnose.Passed
			}
			ev.Segments = append(ev.Segments, t)
		}
		if d.minSilent > 0 {
			t := diagnose.SegmentTest{Up: diagnose.Untested, Down: diagnose.Untested, Outcome: outcome}
			if isUp {
				t.UpSize, t.Up = d.minSilent, diagnose.Failed
			} else {
				t.DownSize, t.Down = d.minSilent, diagnose.Failed
			}
			ev.Segments = append(ev.Segments, t)
		}
	}
	add(upA, downA, true, diagnose.StalledClientHello)
	add(downA, upA, false, diagnose.StalledServerFlight)
	ev.ICMPSignals = a.icmp
	reduced := len(a.icmp) > 0 || upA.recovered+downA.recovered > 0
	if reduced {
		ev.LocalMTU = a.localMTU
		if len(a.icmp) == 0 {
			ev.KernelPMTU = max(upA.recoveredAt, downA.recoveredAt)
		}
	}
	if downA.maxDelivered > 0 {
		ev.FlightBytes = a.flight
	}
	return ev
}

// result concludes.
func (s *summary) result(mode Mode) *Result {
	fi := 0
	s4, s6 := &s.fam[0], &s.fam[1]
	switch {
	case s6.dir[up].silent+s6.dir[down].silent > s4.dir[up].silent+s4.dir[down].silent:
		fi = 1
	case s6.dir[up].silent+s6.dir[down].silent == s4.dir[up].silent+s4.dir[down].silent && s6.flows > s4.flows:
		fi = 1
	}
	family := 4 + 2*fi
	a := &s.fam[fi]
	ev := a.evidence(family)
	d := diagnose.Diagnose(ev)
	if a.flows == 0 {
		d.Verdict, d.Direction = diagnose.VerdictInconclusive, diagnose.Unknown
		d.Findings = append(d.Findings, diagnose.Finding{Code: string(diagnose.VerdictInconclusive),
			Detail: "The capture holds no TCP connection whose start (SYN) it saw: nothing to judge."})
	}
	res := &Result{
		SchemaVersion: 1, Mode: mode, Verdict: d.Verdict, Direction: d.Direction, Family: family,
		PathMTU: d.PathMTU, ICMPTooBig: s.icmpN, ICMP: s.icmp, Fragments: s.fragN, Fragmented: s.frags,
		Outcomes: s.outcomes, Lost: s.lost, LostNotListed: s.lostN - len(s.lost), Findings: d.Findings, Fixes: d.Fixes,
		Upstream: a.dir[up].summary(), Downstream: a.dir[down].summary(),
	}
	res.PathMTURange = MTUBracket{Delivered: d.PathMTU, Lost: minPositive(a.dir[up].minSilent, a.dir[down].minSilent)}
	for _, sig := range a.icmp {
		if sig.MTU > 0 && sig.MTU == d.PathMTU {
			res.PathMTUExact = true
		}
	}
	if res.PathMTURange.Lost > 0 && res.PathMTURange.Lost == d.PathMTU+1 {
		res.PathMTUExact = true
	}
	if res.ICMP == nil {
		res.ICMP = []ICMPEvent{}
	}
	if res.Fragmented == nil {
		res.Fragmented = []FragPairs{}
	}
	if res.Lost == nil {
		res.Lost = []LostPacket{}
	}
	return res
}

func (d *dirAgg) summary() DirSummary {
	return DirSummary{LargestDelivered: d.maxDelivered, SmallestLost: d.minSilent, LostPackets: d.lost,
		LostSilently: d.silent, LostSignalled: d.signalled, Recovered: d.recovered, TooBigReachedSender: d.tooBig}
}

func minPositive(a, b int) int {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	}
	return min(a, b)
}

// listHandshakes returns the handshakes of the listed records.
func listHandshakes(rs []*record, s *summary) ([]Handshake, int) {
	out := []Handshake{}
	for _, r := range rs {
		if !r.handshake {
			continue
		}
		h := Handshake{Handshake: r.hs}
		for di := range 2 {
			for _, w := range r.wire[di] {
				if w.status == lost {
					h.LostPackets++
				}
			}
		}
		if r.srv != nil {
			c := netip.AddrPort(r.srv.client)
			h.ClientAtServer = &c
		}
		out = append(out, h)
	}
	n := 0
	for _, c := range s.outcomes {
		n += c
	}
	return out, n - len(out)
}
