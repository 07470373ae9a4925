package server

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// RungResult is one rung in a report: what the page saw, what the server
// saw, and what the diagnosis reads from both.
type RungResult struct {
	MSS     int                  `json:"mss"`
	Test    diagnose.SegmentTest `json:"test"`
	Browser api.BrowserRung      `json:"browser"`
	Server  []snapshot           `json:"server"`
	// ServerMore counts the connections of the rung not listed in Server
	// (a report keeps at most maxRungSnapshots per rung).
	ServerMore int `json:"server_more,omitempty"`
	// Uncertain says why the server's part of this rung may include
	// connections the page did not make (empty: every one is the page's).
	Uncertain string `json:"uncertain,omitempty"`
	// hasBest says Server[0] is the connection that decided the rung (the
	// join's, not stored).
	hasBest bool
}

// What one page run opens per rung: at most three TLS connections (the
// hello, the download and the upload: the rungs close every connection
// after one request) and one server-first probe, which Chromium opens a
// again (up to three retries) after the first fails TLS. More from the session's address
// in its lease means something else from that address tested the same rung.
const (
	pageTLSPerRung   = 3
	pageDownPerRung  = 4
	maxRungSnapshots = 4
)

// minObservedMSS ignores rcv_mss values that are the kernel's initial
// guess (536) rather than a measured segment.
const minObservedMSS = 537

// joinRung reads one rung: the page's steps and the server's records of
// the rung's TLS connections (tls) and server-first probes (down). plain
// says the page measured over plain HTTP (Session.Plain): its requests are
// then not TLS by design.
func joinRung(fam int, br api.BrowserRung, session string, plain bool, tlsConns, down []snapshot) RungResult {
	hdr := diagnose.IPHeader(fam)
	size := br.MSS + hdr
	for _, s := range append(append([]snapshot(nil), tlsConns...), down...) {
		if s.SYNMSS > 0 && s.SYNMSS+hdr < size {
			size = s.SYNMSS + hdr // the client cannot take more than it offered
		}
	}
	t := diagnose.SegmentTest{UpSize: size, DownSize: size, Up: diagnose.Untested, Down: diagnose.Untested,
		Outcome: diagnose.Timeout}
	// Which connections can be the page's: those its requests named; failing
	// that, those whose handshake never completed (the page sends its request
	// the moment a handshake completes, so an unnamed completed one is some
	// other client's, such as a browser's preconnect). Unnamed ones that
	// disagree (one lost the ClientHello, another the server's flight) may
	// be two people's: the rung's server side is then uncertain and unused.
	var tagged, open []snapshot
	var taggedAt, openAt []int // their indexes in tlsConns
	for i, c := range tlsConns {
		switch {
		case session != "" && c.Session == session:
			tagged, taggedAt = append(tagged, c), append(taggedAt, i)
		case c.Session == "" && !c.HandshakeDone:
			open, openAt = append(open, c), append(openAt, i)
		}
	}
	var uncertain []string
	cands, candsAt := tagged, taggedAt
	if len(cands) == 0 {
		cands, candsAt = open, openAt
		if disagree(open, tlsClass) {
			uncertain = append(uncertain, "unnamed connections on this size disagree (one lost the ClientHello, another the server's reply)")
			cands = nil
		}
	}
	allDown := down
	down, downUncertain := agreeingProbes(down)
	if downUncertain {
		uncertain = append(uncertain, "the server-first probes on this size disagree (one arrived, another was lost)")
	}
	best, bestAt := bestTLS(cands, session), -1
	for i := range cands {
		if &cands[i] == best {
			bestAt = candsAt[i]
		}
	}
	var why string
	t.Outcome, why = diagnose.ClassifyHandshake(rungFacts(br, best, plain))
	if t.Outcome == diagnose.Reset && best != nil && best.Reset {
		t.Detail = why // who did not send the reset, and when
	}
	switch {
	case br.Hello == api.StepOK:
	case best == nil:
		if br.Hello == api.StepFail {
			// The page's hello failed and the server saw nothing: the
			// connection never opened, or its SYN was lost; the page
			// waited out its timeout either way.
			t.Outcome = diagnose.Timeout
		}
		t.Detail = "the server saw no connection on this rung"
	case !best.NotTLS && best.HelloHash == "" && best.HelloUnread:
		t.Detail = "the server was too busy to read this ClientHello"
	}

	// Upstream: the ClientHello (when it needed a full segment) and the upload.
	if best != nil {
		seg := size - hdr - best.Info.OptionBytes()
		switch {
		case best.HelloHash != "" && best.HelloRecords > seg:
			t.Up = diagnose.Passed
		case fullSegmentArrived(*best, seg):
			// A segment of the rung's size crossed, whatever became of
			// the rest of the hello: not lost for its size.
			t.Up = diagnose.Passed
			if t.Outcome == diagnose.StalledClientHello {
				t.Detail = fmt.Sprintf("a full %d-byte packet of the ClientHello arrived, the rest of it (%d of %d bytes arrived) never did",
					size, best.HelloGot, best.HelloExpected)
			}
		case t.Outcome == diagnose.StalledClientHello && (best.HelloExpected == 0 || best.HelloRecords+tlswire.RecordHeaderLen > seg || best.HelloRecords < best.HelloExpected):
			t.Up = diagnose.Failed
			t.Detail = "the ClientHello did not arrive whole"
		}
		// rcv_mss is the largest segment the client sent: a path limit only
		// when the client sent more than a segment (a plain-HTTP request, a
		// small ClientHello fill none).
		if rcv := best.Info.RcvMSS; best.HandshakeDone && rcv >= minObservedMSS && best.Info.BytesReceived > int64(seg) {
			if obs := rcv + hdr + best.Info.OptionBytes(); obs < t.UpSize {
				t.UpSize = obs // the client's kernel learned a smaller path MTU
			}
		}
	}
	t.Up = withBrowserStep(t.Up, br.Up)

	// Downstream: the server-first probe segment, the server's flight, the download.
	for _, s := range down {
		if s.DownWritten <= 0 || !s.Info.Valid {
			continue
		}
		if s.Info.BytesAcked >= int64(s.DownWritten) {
			t.Down = diagnose.Passed
			break
		}
		t.Down = diagnose.Failed
	}
	if best != nil && t.Down != diagnose.Passed {
		seg := size - hdr - best.Info.OptionBytes()
		switch {
		case (best.HandshakeDone || flightAcked(*best)) && best.FlightBytes > int64(seg):
			t.Down = diagnose.Passed
		case t.Outcome == diagnose.StalledServerFlight && best.FlightBytes > int64(seg):
			t.Down = diagnose.Failed
		}
	}
	t.Down = withBrowserStep(t.Down, br.Down)
	if t.Down == diagnose.Passed {
		if p := minPMTU(append(append([]snapshot(nil), down...), tlsConns...)); p > 0 && p < t.DownSize {
			t.DownSize = p // the server learned a smaller path MTU (ICMP works)
		}
	}
	rr := RungResult{MSS: br.MSS, Test: t, Browser: br}
	untagged := 0
	for _, c := range tlsConns {
		if c.Session != session {
			untagged++
		}
	}
	attempts := 1
	if br.Retried {
		attempts = 2 // the page tested the size twice
	}
	if untagged > attempts*pageTLSPerRung || len(allDown) > attempts*pageDownPerRung {
		uncertain = append(uncertain, fmt.Sprintf("the server saw %d unnamed TLS connections and %d probe connections from your address on this size "+
			"while your check ran, more than the page opens: another program on your network tested it too", untagged, len(allDown)))
	}
	rr.Uncertain = strings.Join(uncertain, "; ")
	// Keep what decided the rung: the best TLS connection and the probes
	// first, then others, at most maxRungSnapshots.
	var keep []snapshot
	if best != nil {
		keep = append(keep, *best)
		rr.hasBest = true
	}
	keep = append(keep, allDown...)
	for i := range tlsConns {
		if i != bestAt {
			keep = append(keep, tlsConns[i])
		}
	}
	if len(keep) > maxRungSnapshots {
		rr.ServerMore = len(keep) - maxRungSnapshots
		keep = keep[:maxRungSnapshots]
	}
	rr.Server = keep
	return rr
}

// disagree reports whether the connections that say something fall into
// different classes.
func disagree(ss []snapshot, class func(snapshot) string) bool {
	first := ""
	for _, s := range ss {
		c := class(s)
		switch {
		case c == "":
		case first == "":
			first = c
		case c != first:
			return true
		}
	}
	return false
}

// agreeingProbes returns the probes that say something about the path,
// or none (and true) when they disagree: one acknowledged, another lost.
func agreeingProbes(down []snapshot) ([]snapshot, bool) {
	var said []snapshot
	for _, s := range down {
		if s.Reset && s.Info.BytesAcked < int64(s.DownWritten) {
			// Reset before the client acknowledged the segment (a device
			// that resets the hello the browser sends on it, and the
			// acknowledgement in the segment it drops): nothing of its size.
			continue
		}
		if s.DownWritten > 0 && s.Info.Valid {
			said = append(said, s)
		}
	}
	arrived := func(s snapshot) string {
		if s.Info.BytesAcked >= int64(s.DownWritten) {
			return "arrived"
		}
		return "lost"
	}
	if disagree(said, arrived) {
		return nil, true
	}
	return said, false
}

// bestTLS picks the connection that says most about the rung: one the
// page's requests named, else the one that got furthest.
func bestTLS(conns []snapshot, session string) *snapshot {
	var best *snapshot
	rank := func(s *snapshot) int {
		r := 0
		if s.Session == session && session != "" {
			r += 8
		}
		if s.HandshakeDone {
			r += 4
		}
		if s.HelloHash != "" {
			r += 2
		}
		if s.HelloGot > 0 {
			r++
		}
		return r
	}
	for i := range conns {
		if best == nil || rank(&conns[i]) > rank(best) {
			best = &conns[i]
		}
	}
	return best
}

func minPMTU(ss []snapshot) int {
	p := 0
	for _, s := range ss {
		if s.Info.Valid && s.Info.PMTU > 0 && (p == 0 || s.Info.PMTU < p) {
			p = s.Info.PMTU
		}
	}
	return p
}

// familyEvidence builds the diagnosis input for one family from its rungs
// and every connection of the session in that family.
func familyEvidence(fam int, rungs []RungResult, all []snapshot) diagnose.Evidence {
	hdr := diagnose.IPHeader(fam)
	ev := diagnose.Evidence{Family: fam, Connected: true}
	for _, s := range all {
		if s.SYNMSS > 0 {
			ev.LocalMTU = max(ev.LocalMTU, s.SYNMSS+hdr)
			ev.OfferedMSS = max(ev.OfferedMSS, s.SYNMSS)
		}
		if s.Kind == kindRung && s.HandshakeDone && s.FlightBytes > int64(ev.FlightBytes) {
			ev.FlightBytes = int(s.FlightBytes)
		}
	}
	// The rungs cannot see beyond the largest of them: a client whose
	// link carries more (jumbo frames, loopback) is judged up to there.
	top := 0
	for _, r := range rungs {
		top = max(top, r.MSS+hdr)
	}
	if top > 0 && ev.LocalMTU > top {
		ev.LocalMTU = top
	}
	if p := minPMTU(all); p > 0 && p < ev.LocalMTU {
		ev.KernelPMTU = p // learned by the server's kernel, from ICMP
	}
	sort.Slice(rungs, func(i, j int) bool { return rungs[i].MSS < rungs[j].MSS })
	for _, r := range rungs {
		ev.Segments = append(ev.Segments, r.Test)
	}
	if len(ev.Segments) == 0 {
		ev.Skipped = append(ev.Skipped, "the page reported no rung results")
	}
	return ev
}

// withBrowserStep merges what the browser saw of one direction into what
// the server saw: a step the browser completed passed; a failed step fails
// the direction unless the server saw it pass.
func withBrowserStep(r diagnose.Result, step string) diagnose.Result {
	switch {
	case step == api.StepOK:
		return diagnose.Passed
	case step == api.StepFail && r != diagnose.Passed:
		return diagnose.Failed
	}
	return r
}
