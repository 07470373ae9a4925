package monitor

import (
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// outcomes is the fixed order of outcome counters (an index per outcome
// keeps a bucket small and its series bounded).
var outcomes = []diagnose.Outcome{
	diagnose.Completed, diagnose.StalledClientHello, diagnose.StalledServerFlight, diagnose.NoClientHello,
	diagnose.Alert, diagnose.Reset, diagnose.Timeout, diagnose.NotTLS, diagnose.ConnectFailed,
}

const nOutcomes = 9

func outcomeIndex(o diagnose.Outcome) int {
	for i, x := range outcomes {
		if x == o {
			return i
		}
	}
	return 6 // an outcome this version does not know counts as a timeout
}

// Counts are handshakes by outcome.
type Counts [nOutcomes]uint64

// Map returns the non-zero counts by outcome name.
func (c *Counts) Map() map[diagnose.Outcome]int {
	m := map[diagnose.Outcome]int{}
	for i, n := range c {
		if n > 0 {
			m[outcomes[i]] = int(n)
		}
	}
	return m
}

// Total is the number of handshakes counted.
func (c *Counts) Total() uint64 {
	var t uint64
	for _, n := range c {
		t += n
	}
	return t
}

// tally is one time bucket of one network: what the alerting compares.
type tally struct {
	index     int64  // bucket number (start / bucket width); -1 unused
	completed uint32 // completed handshakes
	stallUp   uint32 // stalls with evidence, upstream (the ClientHello)
	stallDown uint32 // stalls with evidence, downstream (the server flight)
	failed    uint32 // other TLS attempts that failed (reset, alert, timeout without evidence, ...)
}

func (t *tally) stalls() int { return int(t.stallUp + t.stallDown) }

// attempts are the handshakes the completion rate is computed over:
// completed and stalled (ordinary failures neither help nor hurt a network).
func (t *tally) attempts() int { return int(t.completed) + t.stalls() }

func (t *tally) add(o tally) {
	t.completed += o.completed
	t.stallUp += o.stallUp
	t.stallDown += o.stallDown
	t.failed += o.failed
}

// Stall kinds of one handshake.
const (
	notStall = iota
	stallUp
	stallDown
)

// stallKind says whether h counts as a stall and in which direction. A
// stall needs evidence that something was sent and lost, which the
// classifier demands of its two stalled outcomes (a ClientHello with a
// lost part, a server flight never acknowledged); a timeout counts when
// it brackets a lost packet. A ClientHello that simply stopped (a
// half-sent hello from a flood: a timeout with nothing lost) and a
// connection without any hello are not stalls.
func stallKind(h *flow.Handshake) int {
	switch h.Outcome {
	case diagnose.StalledServerFlight:
		return stallDown
	case diagnose.StalledClientHello:
		return stallUp
	case diagnose.Timeout:
		switch {
		case h.Down.Lost > 0:
			return stallDown
		case h.Up.Lost > 0:
			return stallUp
		}
	}
	return notStall
}

// tlsAttempt reports whether h counts at all towards a network's figures
// for alerting: a connection that never sent a ClientHello, or that spoke
// another protocol, is no TLS handshake; one the end of a capture cut
// short says nothing of how it went.
func tlsAttempt(h *flow.Handshake) bool {
	if h.CaptureEnded {
		return false
	}
	switch h.Outcome {
	case diagnose.NoClientHello, diagnose.NotTLS, diagnose.ConnectFailed:
		return false
	}
	return true
}

// evidence accumulates what the handshakes of a network show about its path.
type evidence struct {
	upDelivered, upLost     int
	downDelivered, downLost int
	// The largest packets delivered within stalled handshakes: the
	// failing paths' side of the bracket (a network's healthy paths, or
	// its handshakes before the fault, deliver more).
	stallUpDelivered, stallDownDelivered int
	tooBig, tooBigMTU                    int
	helloBytes, pqHellos                 int
	splitFailed, splitDone               int
	singleDone                           int
	flightBytes                          int
	fam4, fam6                           int
}

func (e *evidence) observe(h *flow.Handshake, kind int) {
	if h.Family == 6 {
		e.fam6++
	} else {
		e.fam4++
	}
	e.upDelivered = max(e.upDelivered, h.Up.Delivered)
	e.downDelivered = max(e.downDelivered, h.Down.Delivered)
	if kind != notStall {
		e.stallUpDelivered = max(e.stallUpDelivered, h.Up.Delivered)
		e.stallDownDelivered = max(e.stallDownDelivered, h.Down.Delivered)
	}
	if kind == stallUp && h.Up.Lost > 0 {
		e.upLost = minPos(e.upLost, h.Up.Lost)
	}
	if kind == stallDown && h.Down.Lost > 0 {
		e.downLost = minPos(e.downLost, h.Down.Lost)
	}
	if h.TooBig > 0 {
		e.tooBig += h.TooBig
		if h.TooBigMTU > 0 {
			e.tooBigMTU = minPos(e.tooBigMTU, h.TooBigMTU)
		}
	}
	e.helloBytes = max(e.helloBytes, h.HelloBytes)
	if h.PQKeyShare {
		e.pqHellos++
	}
	e.flightBytes = max(e.flightBytes, h.FlightBytes)
	split := h.HelloSegments > 1
	switch {
	case h.Outcome == diagnose.Completed && split:
		e.splitDone++
	case h.Outcome == diagnose.Completed:
		e.singleDone++
	case split && (h.Outcome == diagnose.Reset || h.Outcome == diagnose.Alert):
		e.splitFailed++
	}
}

func (e *evidence) merge(o *evidence) {
	e.upDelivered = max(e.upDelivered, o.upDelivered)
	e.downDelivered = max(e.downDelivered, o.downDelivered)
	e.stallUpDelivered = max(e.stallUpDelivered, o.stallUpDelivered)
	e.stallDownDelivered = max(e.stallDownDelivered, o.stallDownDelivered)
	e.upLost = minPos(e.upLost, o.upLost)
	e.downLost = minPos(e.downLost, o.downLost)
	e.tooBig += o.tooBig
	e.tooBigMTU = minPos(e.tooBigMTU, o.tooBigMTU)
	e.helloBytes = max(e.helloBytes, o.helloBytes)
	e.pqHellos += o.pqHellos
	e.splitFailed += o.splitFailed
	e.splitDone += o.splitDone
	e.singleDone += o.singleDone
	e.flightBytes = max(e.flightBytes, o.flightBytes)
	e.fam4 += o.fam4
	e.fam6 += o.fam6
}

// passive turns the evidence and the stall counts into diagnose's input.
// For a network whose stalls are significant (it alerted), the bracket
// comes from the stalled handshakes alone (what got through and what did
// not on the failing paths); otherwise from all its handshakes.
// A lost size at or below a delivered one says nothing about the path MTU
// (that packet was lost to something else): it is left out.
func (e *evidence) passive(c *Counts, up, down int, significant bool) diagnose.PassiveEvidence {
	p := diagnose.PassiveEvidence{
		Family: 4, Outcomes: c.Map(), StalledUp: up, StalledDown: down, Significant: significant,
		UpDelivered: e.upDelivered, UpLost: e.upLost, DownDelivered: e.downDelivered, DownLost: e.downLost,
		TooBig: e.tooBig, TooBigMTU: e.tooBigMTU, HelloBytes: e.helloBytes, PQHellos: e.pqHellos,
		SplitFailed: e.splitFailed, SplitCompleted: e.splitDone, SingleCompleted: e.singleDone,
		FlightBytes: e.flightBytes,
	}
	if significant && up+down > 0 {
		p.UpDelivered, p.DownDelivered = e.stallUpDelivered, e.stallDownDelivered
	}
	if e.fam6 > e.fam4 {
		p.Family = 6
	}
	if p.UpLost > 0 && p.UpLost <= p.UpDelivered {
		p.UpLost = 0
	}
	if p.DownLost > 0 && p.DownLost <= p.DownDelivered {
		p.DownLost = 0
	}
	return p
}

func minPos(a, b int) int {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}

// network is the state of one client network.
type network struct {
	key string // "AS64496", "192.0.2.0/24", or "other"
	asn uint32
	org string

	total      Counts   // every handshake since start
	totalStall [2]int   // stalls with evidence since start: up, down
	totalEv    evidence // evidence since start
	exported   Counts   // handshakes counted while the network had its own series
	recent     [2]evidence
	recentIdx  int64 // the bucket recent[0] started at

	ring []tally // the last buckets, by index modulo len

	exportedNow bool // has its own metric series until the next evaluation

	// Alert state.
	firing    bool
	alerted   bool  // fired at least once
	since     int64 // first bucket the fire test may look at (after a resolution)
	clean     int   // consecutive clean evaluations while firing
	lastSeen  int64 // last bucket with a handshake
	alert     *Alert
	lastAlert *Alert

	// The hello-feature breakdown (features.go): two half windows rotated
	// with recent, the last bucket, everything since start, and what was
	// counted while the network had its own series.
	featWin   [2]featTally
	featLast  featTally
	featTotal featTally
	featExp   featTally
	// The feature alert (featalert.go): at most one at a time, for
	// feature featIdx.
	featAlert, featLastAlert *Alert
	featIdx, featClean       int
	featSeen                 int64 // last bucket with hellos carrying it
}

// featWindow merges the two half windows of the feature breakdown.
func (n *network) featWindow() featTally {
	w := n.featWin[0]
	w.add(&n.featWin[1])
	return w
}

func (n *network) bucket(idx int64) *tally {
	t := &n.ring[int(idx%int64(len(n.ring)))]
	if t.index != idx {
		*t = tally{index: idx}
	}
	return t
}

// sum adds the buckets from..to (inclusive) that the ring still holds,
// visiting only their slots (a window is a few of the history's).
func (n *network) sum(from, to int64) tally {
	var s tally
	size := int64(len(n.ring))
	for idx := max(from, to-size+1, 0); idx <= to; idx++ {
		if t := &n.ring[idx%size]; t.index == idx {
			s.add(*t)
		}
	}
	return s
}

// recentEvidence merges the evidence of the current and previous windows.
func (n *network) recentEvidence() evidence {
	e := n.recent[0]
	e.merge(&n.recent[1])
	return e
}
