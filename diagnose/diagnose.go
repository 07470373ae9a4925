package diagnose

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Finding is one thing the evidence shows, in plain language, with the
// numbers behind it.
type Finding struct {
	Code     string         `json:"code"`
	Detail   string         `json:"detail"`
	Evidence map[string]any `json:"evidence,omitempty"`
}

// Diagnosis is the conclusion about one path.
type Diagnosis struct {
	Verdict Verdict `json:"verdict"`
	// PathMTU is the largest IP packet, bytes, that got through in every
	// direction that was tested; 0 when nothing got through.
	PathMTU   int       `json:"path_mtu"`
	Direction Direction `json:"direction"`
	// UpstreamMTU and DownstreamMTU are the largest packets seen to pass in
	// each direction (0: not tested).
	UpstreamMTU   int       `json:"upstream_mtu"`
	DownstreamMTU int       `json:"downstream_mtu"`
	Findings      []Finding `json:"findings"`
	Fixes         []Fix     `json:"fixes"`
	// Causes lists every problem found, the verdict first: a path can have
	// a black hole and a device that rejects post-quantum hellos.
	Causes []Verdict `json:"causes,omitempty"`

	fragDirection Direction
	// bracketTop is the largest size the path MTU may still have when it
	// is only bracketed (smallest lost packet minus one) and the bracket
	// is too wide for a number to be a fix; 0 otherwise. pathMTUUpper is
	// the same upper end for any bracket (0: nothing larger was lost).
	bracketTop, pathMTUUpper int
	// undecided: a ClientHello variant failed every attempt without
	// proving a cause (see variantFindings): the path is not shown ok.
	undecided bool
}

// Finding codes beyond the verdicts themselves.
const (
	CodeMSSClamped     = "mss_clamped"
	CodePMTUDWorks     = "pmtud_works"
	CodeUDPBlackhole   = "large_datagrams_blackholed"
	CodeHelloSizeBand  = "clienthello_size_band"
	CodeLargeFlight    = "large_server_flight"
	CodeDownUntested   = "downstream_untested"
	CodeUpUntested     = "upstream_untested"
	CodeServerSilent   = "server_silent"
	CodeServerAlert    = "server_alert"
	CodeNotTLS         = "not_tls"
	CodeConnectionLost = "connection_reset"
	CodeSkipped        = "tests_skipped"
)

// dirStats are the size results of one direction.
type dirStats struct {
	maxPass int // largest passing size
	minFail int // smallest failing size above maxPass, 0 if none
	tested  bool
}

// sizeStats sums up one direction of the tests. With split set (the path
// cannot read a hello split across segments), an upstream failure of a
// hello that needed several segments says nothing of the size.
func sizeStats(tests []SegmentTest, up, split bool) dirStats {
	var s dirStats
	if up && split {
		tests = slices.DeleteFunc(slices.Clone(tests), func(t SegmentTest) bool { return t.Up == Failed && t.HelloSegments > 1 })
	}
	for _, t := range tests {
		r, size := t.Down, t.DownSize
		if up {
			r, size = t.Up, t.UpSize
		}
		if r == Passed && size > s.maxPass {
			s.maxPass = size
		}
	}
	for _, t := range tests {
		r, size := t.Down, t.DownSize
		if up {
			r, size = t.Up, t.UpSize
		}
		if r == Failed && size > s.maxPass && (s.minFail == 0 || size < s.minFail) {
			s.minFail = size
		}
	}
	s.tested = s.maxPass > 0 || s.minFail > 0
	return s
}

// Diagnose reads the evidence and concludes.
func Diagnose(ev Evidence) (d Diagnosis) {
	d = Diagnosis{Verdict: VerdictInconclusive, Direction: Unknown, Findings: []Finding{}, Fixes: []Fix{}}
	defer func() { d.Fixes = fixesFor(ev, &d) }()
	if len(ev.Skipped) > 0 {
		d.add(CodeSkipped, "Some tests did not run: "+strings.Join(ev.Skipped, "; ")+".", nil)
	}
	if !ev.Connected {
		d.Verdict = VerdictTCPUnreachable
		d.add(string(VerdictTCPUnreachable), "No TCP connection to the server could be opened: "+ev.ConnectError+
			". Nothing about the path MTU can be learned until the port answers.", map[string]any{"error": ev.ConnectError})
		return d
	}
	if ev.TooSlow != "" {
		d.add(CodeTooSlow, TooSlowText+" "+ev.TooSlow+".", nil)
		return d // inconclusive: nothing about the path
	}
	split := splitShown(ev)
	up, down := sizeStats(ev.Segments, true, split), sizeStats(ev.Segments, false, false)
	d.UpstreamMTU, d.DownstreamMTU = up.maxPass, down.maxPass
	if !anyCompleted(ev.Segments) {
		d.failedEverywhere(ev)
		d.setCauses(d.variantFindings(ev, false), false)
		return d
	}
	d.PathMTU = minPositive(up.maxPass, down.maxPass)
	switch {
	case ev.FlightBytes > 0 && down.maxPass == 0:
		d.add(CodeDownUntested, fmt.Sprintf("The server's first flight (%d bytes) never filled a full-size segment, "+
			"so the handshakes did not test large packets from the server to %s.", ev.FlightBytes, clientName(ev)),
			map[string]any{"flight_bytes": ev.FlightBytes})
	case down.minFail == 0 && down.maxPass < up.maxPass && untestedAbove(ev.Segments, down.maxPass):
		// The server's answers filled segments only at the small rungs: the
		// path is proven downstream up to there, and nothing was lost above
		// it. That is no limit of the path, so it does not set the path MTU.
		d.PathMTU = up.maxPass
		flight := ""
		if ev.FlightBytes > 0 {
			flight = fmt.Sprintf(" (its first flight is %d bytes)", ev.FlightBytes)
		}
		d.add(CodeDownUntested, fmt.Sprintf("Nothing the server sent filled a segment larger than %d bytes%s, "+
			"so packets from the server to %s were tested only up to %d bytes; none was lost.",
			down.maxPass, flight, clientName(ev), down.maxPass),
			map[string]any{"flight_bytes": ev.FlightBytes, "downstream_tested_to": down.maxPass})
	case split && up.minFail == 0 && up.maxPass < down.maxPass:
		// Hellos larger than a segment are split, which this path cannot
		// read: upstream sizes above one hello segment are untested.
		d.PathMTU = down.maxPass
		d.add(CodeUpUntested, fmt.Sprintf("Packets from %s to the server were tested only up to %d bytes: a ClientHello "+
			"that fills larger packets is split across segments, which this path refuses (below).", clientName(ev), up.maxPass),
			map[string]any{"upstream_tested_to": up.maxPass})
	}
	hdr := IPHeader(ev.Family)

	if up.minFail > 0 || down.minFail > 0 {
		d.Verdict = VerdictBlackhole
		switch {
		case up.minFail > 0 && down.minFail > 0:
			d.Direction = Both
		case up.minFail > 0:
			d.Direction = Upstream
		default:
			d.Direction = Downstream
		}
		lost := minPositive(up.minFail, down.minFail)
		wide := lost-d.PathMTU > maxFixBracket
		exact := lost == d.PathMTU+1
		evd := map[string]any{
			"upstream_max_pass": up.maxPass, "upstream_min_fail": up.minFail,
			"downstream_max_pass": down.maxPass, "downstream_min_fail": down.minFail,
			"smallest_lost": lost,
		}
		switch {
		case wide:
			// The floor of a wide bracket is no path MTU, nor its MSS.
			evd["largest_delivered"] = d.PathMTU
		case !exact:
			// A narrow bracket's floor is a safe size, not the path MTU.
			evd["largest_delivered"], evd["path_mtu_upper"], evd["mss"] = d.PathMTU, lost-1, d.PathMTU-hdr
		default:
			evd["path_mtu"], evd["mss"] = d.PathMTU, d.PathMTU-hdr
		}
		d.add(string(VerdictBlackhole), d.blackholeDetail(up, down, lost, exact, wide, clientName(ev)), evd)
		why, m := bracketReason(ev, d.PathMTU, lost)
		d.noteBracket(d.PathMTU, lost, why, m)
	}
	d.helloFindings(ev)
	content := d.variantFindings(ev, true)
	defer func() { d.setCauses(content, ev.Incomplete) }()
	d.datagramFindings(ev)
	d.mtuFindings(ev)
	if s := ev.Server; s != nil && s.HelloSHA256 != "" && s.SentSHA256 != "" && s.HelloSHA256 != s.SentSHA256 {
		d.add(string(VerdictTLSIntercepted), fmt.Sprintf("The server received a different ClientHello (%d bytes) from the one "+
			"sent (%d bytes): something on the path terminates or rewrites TLS.", s.HelloBytes, s.SentHelloSize),
			map[string]any{"sent_bytes": s.SentHelloSize, "received_bytes": s.HelloBytes})
		// A proven interception explains hello trouble better than the hello
		// does: the interceptor is what refuses or mangles it. Only a black
		// hole, a size limit regardless of TLS, ranks above it.
		switch d.Verdict {
		case VerdictInconclusive, VerdictSplitIntolerant, VerdictTLSFailed:
			d.Verdict, d.Direction = VerdictTLSIntercepted, Upstream
		}
	}
	if ev.Incomplete {
		d.add(string(VerdictInconclusive), "The run hit its time limit before the size searches finished: "+
			"the sizes above are what was seen to pass so far, not the answer.", nil)
		d.Verdict, d.Direction = VerdictInconclusive, Unknown
		return d
	}
	if d.Verdict != VerdictInconclusive {
		return d
	}
	switch {
	case d.has(CodeFragmentsDropped) && d.PathMTU >= ev.LocalMTU:
		d.Verdict = VerdictFragmentsDropped
		d.Direction = d.fragDirection
	case ev.LocalMTU > 0 && d.PathMTU < ev.LocalMTU:
		d.Verdict, d.Direction = VerdictPMTUReduced, None
	default:
		d.Verdict, d.Direction = VerdictOK, None
	}
	return d
}

// setCauses lists the problems found, the verdict first, and makes the
// first cause of content the verdict unless a size limit
// (pmtud_blackhole), an interception or an unreachable port ranks above
// it, or the run was cut short (inconclusive stays); the direction is then
// upstream, where the ClientHello goes.
func (d *Diagnosis) setCauses(content []Verdict, incomplete bool) {
	prior := d.Verdict
	if len(content) == 0 && d.undecided && !prior.Problem() {
		d.Verdict, d.Direction = VerdictInconclusive, Unknown
	}
	switch {
	case len(content) == 0, incomplete:
	case prior == VerdictBlackhole, prior == VerdictTLSIntercepted, prior == VerdictTCPUnreachable:
	default:
		d.Verdict, d.Direction = content[0], Upstream
	}
	d.Causes = nil
	add := func(v Verdict) {
		if v.Problem() && v != VerdictInconclusive && !slices.Contains(d.Causes, v) {
			d.Causes = append(d.Causes, v)
		}
	}
	add(d.Verdict)
	for _, c := range content {
		add(c)
	}
	if prior != VerdictTLSFailed {
		// tls_failed is what a cause of content explains.
		add(prior)
	}
}

// CodeTooSlow is the finding that the client was too slow to measure
// (Evidence.TooSlow); TooSlowText is how it begins.
const (
	CodeTooSlow = "too_slow"
	TooSlowText = "Your computer or the network was too slow to measure; retry (with fewer programs running, or later)."
)

// CodeFragmentsDropped is the finding that fragmented packets vanish.
const CodeFragmentsDropped = string(VerdictFragmentsDropped)

// clientName names the client in a sentence: the probe is "this host"; a
// capture may have been taken anywhere.
func clientName(ev Evidence) string {
	if ev.Captured {
		return "the client"
	}
	return "this host"
}

func (d *Diagnosis) blackholeDetail(up, down dirStats, lost int, exact, wide bool, client string) string {
	var b strings.Builder
	if !exact {
		// Sizes in between were not measured: neither end is the path MTU.
		fmt.Fprintf(&b, "Packets of %d bytes vanish without an ICMP error while packets of %d bytes get through: ", lost, d.PathMTU)
	} else {
		fmt.Fprintf(&b, "Packets larger than %d bytes vanish without an ICMP error: ", d.PathMTU)
	}
	figures := func(s dirStats) string {
		if s.maxPass == 0 {
			return fmt.Sprintf("none passed, %d lost", s.minFail)
		}
		return fmt.Sprintf("%d passed, %d lost", s.maxPass, s.minFail)
	}
	other := func(s dirStats, way string) string {
		if s.maxPass > 0 {
			return fmt.Sprintf("; packets %s got through up to %d bytes and none larger was lost", way, s.maxPass)
		}
		return fmt.Sprintf("; packets %s were not tested at these sizes", way)
	}
	switch d.Direction {
	case Both:
		fmt.Fprintf(&b, "from %s to the server (%s) and back (%s)", client, figures(up), figures(down))
	case Upstream:
		fmt.Fprintf(&b, "from %s to the server (%s)%s", client, figures(up), other(down, "from the server to "+client))
	case Downstream:
		fmt.Fprintf(&b, "from the server to %s (%s)%s", client, figures(down), other(up, "from "+client+" to the server"))
	}
	switch {
	case wide:
		b.WriteString(". TCP connects, but a TLS handshake that needs packets that large stalls until it times out.")
	case !exact:
		// (A wide bracket has a finding of its own that says so.)
		fmt.Fprintf(&b, "; the path MTU lies between %d and %d bytes. TCP connects, but a TLS handshake that needs packets "+
			"that large stalls until it times out.", d.PathMTU, lost-1)
	default:
		b.WriteString(". TCP connects, but a TLS handshake whose packets exceed that size stalls until it times out.")
	}
	return b.String()
}

// untestedAbove reports whether some handshake left downstream untested at
// a size above size.
func untestedAbove(ts []SegmentTest, size int) bool {
	for _, t := range ts {
		if t.Down == Untested && t.DownSize > size {
			return true
		}
	}
	return false
}

func anyCompleted(ts []SegmentTest) bool {
	for _, t := range ts {
		if t.Outcome == Completed {
			return true
		}
	}
	return false
}

// decisive reports whether an outcome shows how a handshake ended, as a
// timeout (a capture cut short, a run that stopped) does not.
func decisive(o Outcome) bool { return o != Timeout && o != NoClientHello }

// failedEverywhere explains a server with which no handshake completed.
func (d *Diagnosis) failedEverywhere(ev Evidence) {
	var smallest *SegmentTest
	for i := range ev.Segments {
		t := &ev.Segments[i]
		if t.Outcome == ConnectFailed {
			continue
		}
		switch {
		case smallest == nil:
			smallest = t
		case ev.Captured && decisive(t.Outcome) != decisive(smallest.Outcome):
			// In captures, a handshake that ended in a way that shows
			// something (an alert, a reset) speaks before one the capture
			// cut short, whatever its size.
			if decisive(t.Outcome) {
				smallest = t
			}
		case t.DownSize < smallest.DownSize:
			smallest = t
		}
	}
	if smallest == nil {
		d.Verdict = VerdictInconclusive
		d.add(string(VerdictInconclusive), "No handshake could be attempted.", nil)
		return
	}
	ev2 := map[string]any{"outcome": smallest.Outcome, "packet_size": smallest.DownSize}
	if smallest.Detail != "" {
		ev2["detail"] = smallest.Detail
	}
	d.Verdict = VerdictTLSFailed
	// Each sentence cites the handshake's own detail: who closed the
	// connection, how much of the flight arrived.
	why := func(dflt string) string {
		if smallest.Detail != "" {
			return smallest.Detail
		}
		return dflt
	}
	switch o := smallest.Outcome; {
	case o == NotTLS:
		d.add(CodeNotTLS, "The server answered, but not in TLS ("+why("its first bytes are not a TLS record")+"): this port speaks another protocol.", ev2)
	case o == Alert:
		d.add(CodeServerAlert, "The handshake ended with a TLS alert ("+why("alert")+"), even with the smallest packets: not a path MTU problem.", ev2)
	case o == Reset:
		d.add(CodeConnectionLost, "The connection was closed or reset before the handshake completed ("+
			why("by the server or something in front of it")+"), even with the smallest packets: not a path MTU problem.", ev2)
	case o == StalledServerFlight && ev.Captured:
		// A capture saw the server send its answer: the server did its
		// part, whatever became of the packets.
		d.Verdict = VerdictInconclusive
		d.add(string(VerdictInconclusive), "The server sent its answer to the ClientHello but it was never acknowledged ("+
			why("nothing of it arrived")+"), even in the handshakes with the smallest packets: the path loses even "+
			"small packets from the server, the client went away, or the capture ended first; nothing here points at a packet size.", ev2)
	case o == StalledServerFlight:
		d.add(CodeServerSilent, "The server's answer to the ClientHello never arrived ("+why("nothing came back")+
			"), even with the smallest packets: the server (or something in front of it) is not completing TLS handshakes; "+
			"this is not a path MTU problem.", ev2)
	case o == StalledClientHello:
		d.Verdict = VerdictInconclusive
		d.add(string(VerdictInconclusive), "Even the smallest handshake did not get through (the ClientHello was not acknowledged: "+
			why("none of it arrived")+"): the path loses small packets too, or the server is overloaded.", ev2)
	case o == NoClientHello:
		d.Verdict = VerdictInconclusive
		d.add(string(VerdictInconclusive), "The connections opened but no ClientHello arrived on them: nothing tested TLS.", ev2)
	default:
		// A timeout: the handshakes were cut short (a capture that ends,
		// a run that stopped) before anything showed how they end.
		d.Verdict = VerdictInconclusive
		d.add(string(VerdictInconclusive), "No handshake came to an end that shows success or failure ("+why("no conclusion")+
			"): nothing seen is evidence of a problem; an observation that lasts until the handshakes end would decide.", ev2)
	}
}

func (d *Diagnosis) helloFindings(ev Evidence) {
	hs := append([]HelloTest(nil), ev.Hellos...)
	if len(hs) == 0 {
		return
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].HelloBytes < hs[j].HelloBytes })
	passed := map[int]bool{}
	tried := map[int]bool{}
	for _, h := range hs {
		tried[h.HelloBytes] = true
		if h.Outcome == Completed {
			passed[h.HelloBytes] = true
		}
	}
	var sizes []int
	for s := range tried {
		sizes = append(sizes, s)
	}
	sort.Ints(sizes)
	firstFail, lastFail, failAbovePass := 0, 0, false
	for _, s := range sizes {
		if passed[s] {
			if firstFail > 0 {
				failAbovePass = true
			}
			continue
		}
		if firstFail == 0 {
			firstFail = s
		}
		lastFail = s
	}
	if firstFail == 0 || firstFail == sizes[0] {
		return // all passed, or even the smallest failed (explained elsewhere)
	}
	pkt := 0 // the largest packet any of them needed
	for _, h := range hs {
		pkt = max(pkt, h.PacketSize)
	}
	evd := map[string]any{"first_failing_bytes": firstFail, "last_failing_bytes": lastFail, "packet_size": pkt, "sizes_tested": sizes}
	if !failAbovePass {
		d.add(string(VerdictSplitIntolerant), fmt.Sprintf("ClientHellos of %d bytes and more fail although every packet was at most %d bytes "+
			"(which pass): something on the path cannot handle a ClientHello split across TCP segments, "+
			"as a post-quantum key share (about 1.5-1.8 KB) makes it.", firstFail, pkt), evd)
		if d.Verdict == VerdictInconclusive {
			d.Verdict, d.Direction = VerdictSplitIntolerant, Upstream
		}
		return
	}
	d.add(CodeHelloSizeBand, fmt.Sprintf("ClientHellos from %d to %d bytes fail while smaller and larger ones pass "+
		"(every packet at most %d bytes): something on the path mishandles hellos of those sizes.", firstFail, lastFail, pkt), evd)
	if d.Verdict == VerdictInconclusive {
		d.Verdict, d.Direction = VerdictTLSFailed, Upstream
	}
}

func (d *Diagnosis) datagramFindings(ev Evidence) {
	var control, bigDF, frag *DatagramTest
	for i := range ev.Datagrams {
		t := &ev.Datagrams[i]
		if t.Result == Untested {
			continue
		}
		switch {
		case t.Fragmented && t.Result == Failed && (frag == nil || t.Proves == Upstream):
			frag = t // a UDP loss says more (upstream) than an echo round trip
		case !t.Fragmented && t.Result == Passed && (control == nil || t.Size < control.Size):
			control = t
		}
	}
	for i := range ev.Datagrams {
		t := &ev.Datagrams[i]
		if t.DF && t.Result == Failed && t.Answer == AnswerNone && control != nil && t.Size > control.Size &&
			!signalled(ev.ICMPSignals, t.Size) && (bigDF == nil || t.Method == MethodUDP && bigDF.Method != MethodUDP) {
			bigDF = t
		}
	}
	if control == nil {
		return // the server answers no datagram at all: nothing to compare
	}
	if frag != nil {
		// A lost fragmented UDP datagram to a closed port, or an echo request
		// the server never acknowledged, proves upstream loss (the answers
		// are small); an acknowledged echo whose full-size answer was lost
		// proves downstream loss; a lost ICMP echo round trip proves loss
		// in some direction.
		var up, down bool
		for _, t := range ev.Datagrams {
			if t.Fragmented && t.Result == Failed {
				up = up || t.Proves == Upstream
				down = down || t.Proves == Downstream
			}
		}
		switch {
		case up && down:
			d.fragDirection = Both
		case up:
			d.fragDirection = Upstream
		case down:
			d.fragDirection = Downstream
		default:
			d.fragDirection = Unknown
		}
		what := fmt.Sprintf("a %d-byte %s that had to be fragmented got no answer", frag.Size, frag.Method)
		if d.fragDirection == Downstream {
			what = fmt.Sprintf("the server received a %d-byte %s in fragments, but its answer of the same size, "+
				"fragmented on the way back, never arrived", frag.Size, frag.Method)
		}
		d.add(CodeFragmentsDropped, fmt.Sprintf("IP fragments are dropped: %s, while a %d-byte one did. "+
			"UDP (DNS, VPNs, QUIC) and anything else that relies on fragments breaks on this path.", what, control.Size),
			map[string]any{"size": frag.Size, "method": frag.Method, "control_size": control.Size, "direction": d.fragDirection})
	}
	if bigDF != nil && d.PathMTU > 0 && bigDF.Size > d.PathMTU {
		d.add(CodeUDPBlackhole, fmt.Sprintf("A %d-byte %s with Don't Fragment got neither an answer nor an ICMP error: large "+
			"datagrams (UDP, QUIC, ICMP) are black-holed on this path even if TCP copes.", bigDF.Size, bigDF.Method),
			map[string]any{"size": bigDF.Size, "method": bigDF.Method})
	}
}

// signalled reports whether a router signalled an MTU below size: then a
// silent datagram of that size is expected (its ICMP error went elsewhere).
func signalled(sigs []ICMPSignal, size int) bool {
	for _, s := range sigs {
		if s.MTU > 0 && s.MTU < size {
			return true
		}
	}
	return false
}

func (d *Diagnosis) mtuFindings(ev Evidence) {
	hdr := IPHeader(ev.Family)
	if len(ev.ICMPSignals) > 0 || (ev.KernelPMTU > 0 && ev.KernelPMTU < ev.LocalMTU) {
		var parts []string
		seen := map[ICMPSignal]bool{}
		for _, s := range ev.ICMPSignals {
			if !seen[s] {
				seen[s] = true
				parts = append(parts, fmt.Sprintf("%s says %d", s.From, s.MTU))
			}
		}
		detail := fmt.Sprintf("Path MTU discovery works: routers report a smaller MTU (%s)", strings.Join(parts, ", "))
		switch {
		case len(parts) == 0 && ev.Captured:
			// A capture shows no kernel: only what the sender did.
			detail = fmt.Sprintf("Path MTU discovery works: the sender resent the lost bytes in packets of at most %d bytes "+
				"(it learned the smaller path MTU from an ICMP message this capture does not hold, or by probing)", ev.KernelPMTU)
		case len(parts) == 0:
			detail = fmt.Sprintf("Path MTU discovery works: the kernel learned a path MTU of %d", ev.KernelPMTU)
		}
		d.add(CodePMTUDWorks, detail+" and TCP adapts.", map[string]any{"kernel_pmtu": ev.KernelPMTU, "icmp": ev.ICMPSignals})
		return
	}
	if ev.SettledMSS > 0 && ev.OfferedMSS > ev.SettledMSS && ev.SettledMSS+hdr < ev.LocalMTU {
		d.add(CodeMSSClamped, fmt.Sprintf("The connection settled on an MSS of %d (packets of %d bytes) although this host offered %d, "+
			"and no router signalled a smaller MTU: the MSS is clamped on the way (or set low by the server). "+
			"TCP works thanks to it; other traffic gets no such help.", ev.SettledMSS, ev.SettledMSS+hdr, ev.OfferedMSS),
			map[string]any{"settled_mss": ev.SettledMSS, "offered_mss": ev.OfferedMSS, "packet_size": ev.SettledMSS + hdr})
	}
}

func (d *Diagnosis) add(code, detail string, ev map[string]any) {
	d.Findings = append(d.Findings, Finding{Code: code, Detail: detail, Evidence: ev})
}

func (d *Diagnosis) has(code string) bool {
	for _, f := range d.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
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
