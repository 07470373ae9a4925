package analyze

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// maxLostListed bounds the lost packets listed in a result.
const maxLostListed = 1000

// dirAgg is one direction's figures over the flows of a path.
type dirAgg struct {
	maxDelivered                       int
	maxMerged                          int // largest wire size inferred from segments that arrived merged
	lost, silent, signalled, recovered int
	tooBig                             int
	recoveredAt                        int         // largest packet that got through where smaller packets recovered a loss
	silentSizes                        map[int]int // sizes of the packets lost without explanation
	// undecided holds the sizes of packets whose fate says nothing of
	// their size (noteUndecided); undecidedOver counts those past its cap.
	undecided     map[int]int
	undecidedOver int
}

// minSilent is the smallest packet lost without explanation that is larger
// than every delivered one (smaller losses are ordinary loss), 0 if none.
func (d *dirAgg) minSilent() int {
	m := 0
	for size := range d.silentSizes {
		if size > d.maxDelivered && (m == 0 || size < m) {
			m = size
		}
	}
	return m
}

// silentAbove counts the packets lost without explanation above the
// largest delivered size: the losses that speak of a size limit.
func (d *dirAgg) silentAbove() int {
	n := 0
	for size, c := range d.silentSizes {
		if size > d.maxDelivered {
			n += c
		}
	}
	return n
}

// pathAgg is what the flows between one client address and one server
// address showed.
type pathAgg struct {
	client, server netip.Addr
	family         int
	flows          int
	hsFigures      // from the tracker's handshakes
	dir            [2]dirAgg
	localMTU       int
	icmp           []diagnose.ICMPSignal
	lost           []LostPacket // the path's first lost packets
}

// maxLostPerPath bounds the lost packets kept per path.
const maxLostPerPath = 64

type pathKey struct{ client, server netip.Addr }

// maxPaths bounds the paths figured separately; past it, flows of new
// paths are folded into one "other" path.
const maxPaths = 4096

// summary folds finished flows into the figures the verdict needs, without
// keeping the flows.
type summary struct {
	paths    map[pathKey]*pathAgg
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
	return &summary{paths: map[pathKey]*pathAgg{}, outcomes: map[diagnose.Outcome]int{}, tlsPorts: map[uint16]bool{443: true}}
}

func (s *summary) path(client, server netip.Addr, family int) *pathAgg {
	k := pathKey{client, server}
	a := s.paths[k]
	if a == nil {
		if len(s.paths) >= maxPaths {
			k = pathKey{}
			if a = s.paths[k]; a != nil {
				return a
			}
		}
		a = &pathAgg{client: k.client, server: k.server, family: family}
		for i := range a.dir {
			a.dir[i].silentSizes = map[int]int{}
		}
		s.paths[k] = a
	}
	return a
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
	a := s.path(f.client.Addr(), f.server.Addr(), int(f.family))
	a.flows++
	hdr := diagnose.IPHeader(int(f.family))
	if m := max(f.syn.mss, f.synAck.mss); m > 0 {
		a.localMTU = max(a.localMTU, m+hdr)
	}
	// The path's handshakes are the tracker's (addTracked): the record's
	// own classification only decides whether its packets are kept.
	r.handshake = s.isHandshake(r)
	for di := range 2 {
		d := &a.dir[di]
		sender := f
		if r.paired && di == down {
			sender = r.srv
		}
		for _, tb := range sender.tooBig {
			if int(tb.dir) == di && !tb.inherited {
				d.tooBig++
			}
		}
		ws := r.wire[di]
		// Merged segments say their wire size only where the sender
		// never had to resend (it may have cut smaller ones after an
		// ICMP too-big this capture does not hold).
		resent := false
		for i := range ws {
			resent = resent || ws[i].retrans || ws[i].inferred
		}
		for i := range ws {
			w := &ws[i]
			if w.status == unknown || w.status == delivered && w.merged || w.status == lost && !w.silent() {
				d.noteUndecided(w.ipLen)
			}
			switch w.status {
			case delivered:
				if !w.merged {
					d.maxDelivered = max(d.maxDelivered, w.ipLen)
				} else if !resent {
					d.maxMerged = max(d.maxMerged, w.ipLen)
				}
			case lost:
				d.lost++
				switch {
				case w.withLarger:
				case w.signalled:
					d.signalled++
				case w.recovered:
					d.recovered++
					d.recoveredAt = max(d.recoveredAt, fillSize(ws, w))
				default:
					d.silent++
					if _, ok := d.silentSizes[w.ipLen]; ok || len(d.silentSizes) < 256 {
						d.silentSizes[w.ipLen]++
					}
				}
				s.addLost(a, r, di, w)
			}
		}
	}
}

// fillSize is the largest delivered packet that carried bytes of a lost
// one later.
func fillSize(ws []wirePkt, l *wirePkt) int {
	n := 0
	for _, x := range ws {
		if x.status == delivered && !x.merged && x.t >= l.t && x.Overlaps(l.span) {
			n = max(n, x.ipLen)
		}
	}
	return n
}

func (s *summary) addLost(a *pathAgg, r *record, di int, w *wirePkt) {
	s.lostN++
	if len(s.lost) >= maxLostListed && len(a.lost) >= maxLostPerPath {
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
	l := LostPacket{
		Direction: dir, IPSize: w.ipLen, Time: time.Unix(0, w.t).UTC(), TMS: float64(w.t-start) / 1e6,
		Flow: FlowID{r.f.client.String(), r.f.server.String()}, Seq: [2]uint32{w.Start, w.End}, How: how,
		Retransmission: w.retrans, ICMPSignalled: w.signalled, RecoveredSmaller: w.recovered, WithLarger: w.withLarger,
	}
	if len(s.lost) < maxLostListed {
		s.lost = append(s.lost, l)
	}
	if len(a.lost) < maxLostPerPath {
		a.lost = append(a.lost, l)
	}
}

// addCapture folds a capture's ICMP and fragment figures.
func (s *summary) addCapture(c *capResult) {
	s.icmpN += c.icmpN
	s.fragN += c.fragN
	for _, e := range c.icmp {
		if e.flow.src.IsValid() {
			a := s.paths[pathKey{e.flow.src.Addr(), e.flow.dst.Addr()}]
			if a == nil {
				a = s.paths[pathKey{e.flow.dst.Addr(), e.flow.src.Addr()}]
			}
			sig := diagnose.ICMPSignal{From: e.from.String(), MTU: e.mtu}
			if a != nil && !containsSignal(a.icmp, sig) && len(a.icmp) < 16 {
				a.icmp = append(a.icmp, sig)
			}
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
func (a *pathAgg) evidence() diagnose.Evidence {
	ev := diagnose.Evidence{Family: a.family, Connected: a.flows > 0, Captured: true}
	upA, downA := &a.dir[up], &a.dir[down]
	silent := upA.silentAbove()+downA.silentAbove() > 0
	if !silent && a.completed == 0 && len(a.tests) > 0 {
		ev.Segments = a.tests
		return ev
	}
	add := func(d, o *dirAgg, isUp bool, outcome diagnose.Outcome) {
		if d.maxDelivered > 0 && (d.silentAbove() > 0 || d.maxDelivered >= o.maxDelivered) {
			t := diagnose.SegmentTest{Up: diagnose.Untested, Down: diagnose.Untested, Outcome: diagnose.Completed}
			if isUp {
				t.UpSize, t.Up = d.maxDelivered, diagnose.Passed
			} else {
				t.DownSize, t.Down = d.maxDelivered, diagnose.Passed
			}
			ev.Segments = append(ev.Segments, t)
		}
		if m := d.minSilent(); m > 0 {
			t := diagnose.SegmentTest{Up: diagnose.Untested, Down: diagnose.Untested, Outcome: outcome}
			if isUp {
				t.UpSize, t.Up = m, diagnose.Failed
			} else {
				t.DownSize, t.Down = m, diagnose.Failed
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
	ev.SentInBracket = a.sentInBracket(passedFloor(ev.Segments))
	return ev
}

// diagnosed is one path's conclusion.
type diagnosed struct {
	a *pathAgg
	d diagnose.Diagnosis
}

// result concludes: every path (client and server address) is diagnosed
// on its own; the result's conclusion is the path with the most
// unexplained losses above its delivered sizes among those with a problem,
// otherwise the path with the most flows.
func (s *summary) result(mode Mode) *Result {
	var ds []diagnosed
	for _, a := range s.paths {
		// Segments that arrived merged (GRO, or a super-segment handed on
		// whole) are cut at the MSS; that is their wire size unless the
		// sender cut smaller ones after an ICMP too-big the receiver
		// never saw. Where nothing on the path shows such a reduction,
		// they count.
		if len(a.icmp) == 0 && a.dir[up].recovered+a.dir[down].recovered == 0 {
			for i := range a.dir {
				a.dir[i].maxDelivered = max(a.dir[i].maxDelivered, a.dir[i].maxMerged)
			}
		}
		ds = append(ds, diagnosed{a, diagnose.Diagnose(a.evidence())})
	}
	weight := func(x diagnosed) int { return x.a.dir[up].silentAbove() + x.a.dir[down].silentAbove() }
	sort.Slice(ds, func(i, j int) bool {
		pi, pj := ds[i].d.Verdict.Problem(), ds[j].d.Verdict.Problem()
		if pi != pj {
			return pi
		}
		if wi, wj := weight(ds[i]), weight(ds[j]); wi != wj {
			return wi > wj
		}
		if ds[i].a.flows != ds[j].a.flows {
			return ds[i].a.flows > ds[j].a.flows
		}
		return ds[i].a.client.Less(ds[j].a.client) || ds[i].a.client == ds[j].a.client && ds[i].a.server.Less(ds[j].a.server)
	})
	res := &Result{
		SchemaVersion: 1, Mode: mode, ICMPTooBig: s.icmpN, ICMP: s.icmp, Fragments: s.fragN, Fragmented: s.frags,
		Outcomes: s.outcomes, Lost: s.lost, LostNotListed: s.lostN - len(s.lost), Paths: []PathResult{},
		PathVerdicts: map[diagnose.Verdict]int{},
	}
	for i, x := range ds {
		res.PathVerdicts[x.d.Verdict]++
		if i < maxPathsListed {
			res.Paths = append(res.Paths, x.pathResult())
		}
	}
	if len(ds) == 0 {
		res.Verdict, res.Direction, res.Family = diagnose.VerdictInconclusive, diagnose.Unknown, 4
		res.Findings = []diagnose.Finding{{Code: string(diagnose.VerdictInconclusive),
			Detail: "The capture holds no TCP connection whose start (SYN) it saw: nothing to judge."}}
		res.Fixes = []diagnose.Fix{}
	} else {
		top := ds[0]
		p := top.pathResult()
		res.Verdict, res.Direction, res.Family, res.PathMTU, res.PathMTUExact, res.PathMTURange = p.Verdict, p.Direction, p.Family, p.PathMTU, p.PathMTUExact, p.PathMTURange
		res.Upstream, res.Downstream = top.a.dir[up].summary(), top.a.dir[down].summary()
		res.Findings, res.Fixes = top.d.Findings, top.d.Fixes
		res.Path = &FlowID{top.a.client.String(), top.a.server.String()}
		if !top.a.client.IsValid() {
			res.Path = &FlowID{"other", "other"}
		}
		// The concluded path's losses first, those nothing explains
		// before the others, then the other paths'.
		explained := func(l LostPacket) int {
			if l.ICMPSignalled || l.RecoveredSmaller || l.WithLarger {
				return 1
			}
			return 0
		}
		lost := slices.Clone(top.a.lost)
		slices.SortStableFunc(lost, func(a, b LostPacket) int { return cmp.Compare(explained(a), explained(b)) })
		for _, l := range s.lost {
			if len(lost) >= maxLostListed {
				break
			}
			if h, _, err := net.SplitHostPort(l.Flow.Client); err != nil || h != top.a.client.String() {
				lost = append(lost, l)
			}
		}
		res.Lost, res.LostNotListed = lost, s.lostN-len(lost)
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

// maxPathsListed bounds the paths a result lists.
const maxPathsListed = 200

func (x diagnosed) pathResult() PathResult {
	a, d := x.a, x.d
	p := PathResult{Client: a.client.String(), Server: a.server.String(), Family: a.family, Verdict: d.Verdict,
		Direction: d.Direction, PathMTU: d.PathMTU, Flows: a.flows, Handshakes: a.handshakes, Completed: a.completed,
		LostSilently: a.dir[up].silentAbove() + a.dir[down].silentAbove()}
	if !a.client.IsValid() {
		p.Client, p.Server = "other", "other"
	}
	p.PathMTURange = MTUBracket{Delivered: d.PathMTU, Lost: minPositive(a.dir[up].minSilent(), a.dir[down].minSilent())}
	p.PathMTURange.SentBetween = a.sentInBracket(d.PathMTU)
	if _, _, wide := d.Bracket(); wide {
		// Only bracketed: the largest packet through is no path MTU.
		p.PathMTU = 0
		return p
	}
	for _, sig := range a.icmp {
		if sig.MTU > 0 && sig.MTU == d.PathMTU {
			p.PathMTUExact = true
		}
	}
	if p.PathMTURange.Lost > 0 && p.PathMTURange.Lost == d.PathMTU+1 {
		p.PathMTUExact = true
	}
	return p
}

func (d *dirAgg) summary() DirSummary {
	return DirSummary{LargestDelivered: d.maxDelivered, SmallestLost: d.minSilent(), LostPackets: d.lost,
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
