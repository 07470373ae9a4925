package monitor

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// Alert kinds and states.
const (
	KindNetwork = "network"
	KindServer  = "server"

	Firing   = "firing"
	Resolved = "resolved"
)

// Alert is one alert's state change: a network (or the whole server)
// started or stopped failing.
type Alert struct {
	// ID is stable from firing to resolution: kind, network and start.
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Network string `json:"network,omitempty"`
	ASN     uint32 `json:"asn,omitempty"`
	Org     string `json:"org,omitempty"`
	// StartsAt is the start of the bucket that fired; EndsAt the end of
	// the bucket that resolved it (zero while firing). Both are packet time.
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at,omitzero"`
	// Reason says why it resolved: "recovered" or "no_traffic".
	Reason  string `json:"reason,omitempty"`
	Summary string `json:"summary"`
	// Stats are the figures of the test that fired.
	Stats Stats `json:"stats"`
	// Feature holds a feature alert's figures (kind feature), nil otherwise.
	Feature   *FeatureStats      `json:"feature,omitempty"`
	Diagnosis diagnose.Diagnosis `json:"diagnosis"`
	PageURL   string             `json:"page_url,omitempty"`
}

// Stats are the numbers behind a test: the network's handshakes against
// the reference, the other networks that are healthy in the same buckets
// (alerting networks and those far and significantly below the healthy
// majority are left out: see reference).
type Stats struct {
	Scope       string  `json:"scope"` // "bucket" (the last one) or "window"
	Handshakes  int     `json:"handshakes"`
	Completed   int     `json:"completed"`
	StalledUp   int     `json:"stalled_up"`
	StalledDown int     `json:"stalled_down"`
	Rate        float64 `json:"completion_rate"`
	Shrunk      float64 `json:"shrunk_rate"`
	OthersRate  float64 `json:"others_rate"`
	OthersLower float64 `json:"others_rate_lower"` // Wilson 95% lower bound, the rate tested against
	Others      int     `json:"others_handshakes"`
	// OthersNetworks is how many networks the reference pools; Excluded
	// how many other networks with handshakes in the same buckets were
	// left out of it as failing.
	OthersNetworks int     `json:"others_networks"`
	Excluded       int     `json:"excluded_networks"`
	PValue         float64 `json:"p_value"`
}

// serverState is the server-wide detector: the completion rate of all
// TLS attempts against its own recent baseline.
type serverState struct {
	baseline float64
	has      bool
	firing   bool
	clean    int
	since    int64
	lastSeen int64
	alert    *Alert
	low      bool // the last bucket was low against the baseline
}

// closeBucket evaluates bucket b, which just ended.
func (m *Monitor) closeBucket(b int64) {
	var tot tally
	for _, n := range m.nets {
		tot.add(n.sum(b, b))
	}
	m.evaluateServer(b, tot)
	end := m.start(b + 1)
	refs := &references{m: m, to: b}
	m.order = m.order[:0]
	for _, n := range m.nets {
		m.order = append(m.order, n)
	}
	slices.SortFunc(m.order, func(x, y *network) int { return cmp.Compare(x.key, y.key) })
	for _, n := range m.order {
		last := n.sum(b, b)
		if last.attempts()+int(last.failed) > 0 && m.opt.Bucket != nil {
			m.opt.Bucket(BucketRecord{Network: n.key, ASN: n.asn, Org: n.org, Start: m.start(b),
				Completed: int(last.completed), StalledUp: int(last.stallUp), StalledDn: int(last.stallDown), Failed: int(last.failed)})
		}
		if n.key != OtherNetwork {
			m.evaluateNetwork(n, b, last, refs, end)
		}
	}
	m.evaluateFeatures(b, end)
	for _, n := range m.nets {
		if b-n.recentIdx+1 >= int64(m.cfg.Window) {
			n.recent[1], n.recent[0] = n.recent[0], evidence{}
			n.featWin[1], n.featWin[0] = n.featWin[0], featTally{}
			n.recentIdx = b + 1
		}
	}
	if len(m.nets) >= m.cfg.MaxNetworks {
		m.pruneIdle(b)
	}
	m.refreshExported()
}

// pruneIdle forgets, when the table is full, the networks that sent
// nothing for longer than the history and are not alerting, so that new
// networks get their own entries again instead of all going to other.
func (m *Monitor) pruneIdle(b int64) {
	for key, n := range m.nets {
		if key != OtherNetwork && !n.firing && n.featAlert == nil && b-n.lastSeen > int64(m.cfg.History) {
			delete(m.nets, key)
			m.pruned++
		}
	}
}

// evaluateNetwork runs the fire test on n (its last bucket, then its
// window, each against the healthy networks' reference over the same
// buckets) or, when it is firing, the resolution test.
func (m *Monitor) evaluateNetwork(n *network, b int64, last tally, refs *references, end time.Time) {
	winFrom := b - int64(m.cfg.Window) + 1
	if !n.firing {
		if m.server.firing || m.server.low {
			return // a server-wide drop is one server alert, not one per network
		}
		o, nets, excl := refs.over(b).others(n, last)
		if o.attempts() < m.cfg.MinOthers {
			// Too few others in this bucket alone (a quiet server): the
			// network's bucket against the others over the window.
			o, nets, excl = refs.over(winFrom).others(n, n.sum(winFrom, b))
		}
		fire, st := m.test("bucket", last, o, nets, excl)
		if !fire {
			// The others' figures over the same buckets the network's window covers.
			from := max(winFrom, n.since)
			win := n.sum(from, b)
			o, nets, excl := refs.over(from).others(n, win)
			fire, st = m.test("window", win, o, nets, excl)
		}
		if !fire {
			return
		}
		n.firing, n.alerted, n.clean = true, true, 0
		a := m.networkAlert(n, st, m.start(b))
		n.alert = a
		m.emit(*a)
		return
	}
	// Firing: resolve with hysteresis, or for lack of traffic.
	if last.attempts() == 0 {
		if end.Sub(m.start(n.lastSeen+1)) >= m.cfg.StaleAfter {
			m.resolveNetwork(n, b, end, "no_traffic")
		}
		return
	}
	o, nets, excl := refs.over(b).others(n, last)
	_, st := m.test("bucket", last, o, nets, excl)
	clean := last.completed > 0 && (last.stalls() == 0 || st.PValue >= m.cfg.ResolveAlpha)
	if !clean {
		n.clean = 0
		return
	}
	n.clean++
	if n.clean >= m.cfg.ResolveAfter {
		m.resolveNetwork(n, b, end, "recovered")
	}
}

func (m *Monitor) resolveNetwork(n *network, b int64, end time.Time, reason string) {
	a := *n.alert
	a.State, a.EndsAt, a.Reason = Resolved, end, reason
	a.Summary = fmt.Sprintf("%s: handshakes complete again", n.label())
	if reason == "no_traffic" {
		a.Summary = fmt.Sprintf("%s: no handshakes for %s, alert closed", n.label(), m.cfg.StaleAfter)
	}
	n.firing, n.clean, n.since = false, 0, b+1
	n.lastAlert, n.alert = &a, nil
	m.emit(a)
}

func (m *Monitor) networkAlert(n *network, st Stats, start time.Time) *Alert {
	ev := n.recentEvidence()
	var c Counts
	c[outcomeIndex(diagnose.Completed)] = uint64(st.Completed)
	c[outcomeIndex(diagnose.StalledClientHello)] = uint64(st.StalledUp)
	c[outcomeIndex(diagnose.StalledServerFlight)] = uint64(st.StalledDown)
	d := diagnose.Passive(ev.passive(&c, st.StalledUp, st.StalledDown, true))
	a := &Alert{
		ID: fmt.Sprintf("network/%s/%d", n.key, start.Unix()), Kind: KindNetwork, State: Firing,
		Network: n.key, ASN: n.asn, Org: n.org, StartsAt: start, Stats: st, Diagnosis: d, PageURL: m.opt.PageURL,
	}
	a.Summary = fmt.Sprintf("%s: %d of %d TLS handshakes stalled (%.0f%% completed, healthy networks %.0f%%): %s, %s",
		n.label(), st.StalledUp+st.StalledDown, st.Handshakes, 100*st.Rate, 100*st.OthersRate, d.Verdict, d.Direction)
	return a
}

func (n *network) label() string {
	switch {
	case n.asn != 0 && n.org != "":
		return fmt.Sprintf("%s (%s)", n.key, n.org)
	default:
		return n.key
	}
}

func (m *Monitor) evaluateServer(b int64, t tally) {
	s := &m.server
	all := t.attempts() + int(t.failed)
	end := m.start(b + 1)
	s.low = false
	if all > 0 {
		s.lastSeen = b
	}
	if all < m.cfg.ServerMin {
		if s.firing && end.Sub(m.start(s.lastSeen+1)) >= m.cfg.StaleAfter {
			m.resolveServer(end, "no_traffic")
		}
		return
	}
	rate := float64(t.completed) / float64(all)
	if !s.has {
		s.baseline, s.has = rate, true
		return
	}
	p := binomLowerTail(int(t.completed), all, s.baseline)
	// Low: far below the baseline, and across more than ServerBreadth of
	// the networks (two failing networks out of four are two network
	// alerts, not a server one).
	s.low = rate < s.baseline-m.cfg.MinDrop && p < m.cfg.Alpha && m.breadth(b, s.baseline)
	if s.firing {
		if rate >= s.baseline-m.cfg.MinDrop/2 {
			s.clean++
			if s.clean >= m.cfg.ResolveAfter {
				m.resolveServer(end, "recovered")
			}
		} else {
			s.clean = 0
		}
		return
	}
	if s.low {
		s.firing, s.clean = true, 0
		start := m.start(b)
		s.alert = &Alert{
			ID: fmt.Sprintf("server/%d", start.Unix()), Kind: KindServer, State: Firing, StartsAt: start,
			Stats: Stats{Scope: "bucket", Handshakes: all, Completed: int(t.completed), StalledUp: int(t.stallUp),
				StalledDown: int(t.stallDown), Rate: rate, OthersRate: s.baseline, PValue: p},
			Diagnosis: diagnose.Diagnosis{Verdict: diagnose.VerdictTLSFailed, Direction: diagnose.Unknown,
				Findings: []diagnose.Finding{{Code: "server_wide_drop", Detail: fmt.Sprintf(
					"Only %.0f%% of %d TLS handshakes completed against %.0f%% before, across most client networks: "+
						"the server or something in front of it fails, not one network's path.", 100*rate, all, 100*s.baseline)}},
				Fixes: []diagnose.Fix{}},
		}
		s.alert.Summary = fmt.Sprintf("server-wide: %.0f%% of %d TLS handshakes completed (baseline %.0f%%)", 100*rate, all, 100*s.baseline)
		m.emit(*s.alert)
		return
	}
	if !s.low {
		s.baseline = 0.7*s.baseline + 0.3*rate
	}
}

// breadth reports whether the drop in bucket b spans more than
// ServerBreadth of the networks with attempts in it (at least two): a
// server-wide drop, not one big network nor a few failing ones.
func (m *Monitor) breadth(b int64, baseline float64) bool {
	active, failing := 0, 0
	for _, n := range m.nets {
		t := n.sum(b, b)
		all := t.attempts() + int(t.failed)
		if all == 0 {
			continue
		}
		active++
		if shrink(int(t.completed), all, baseline, 1) < baseline-m.cfg.MinDrop {
			failing++
		}
	}
	return failing >= 2 && float64(failing) > m.cfg.ServerBreadth*float64(active)
}

func (m *Monitor) resolveServer(end time.Time, reason string) {
	s := &m.server
	a := *s.alert
	a.State, a.EndsAt, a.Reason = Resolved, end, reason
	a.Summary = "server-wide: handshakes complete again"
	if reason == "no_traffic" {
		a.Summary = fmt.Sprintf("server-wide: no handshakes for %s, alert closed", m.cfg.StaleAfter)
	}
	s.firing, s.clean, s.alert = false, 0, nil
	m.emit(a)
}

func (m *Monitor) emit(a Alert) {
	m.history = append(m.history, a)
	if len(m.history) > maxHistory {
		m.history = m.history[len(m.history)-maxHistory:]
	}
	m.opt.Logger.Info("alert", "id", a.ID, "state", a.State, "summary", a.Summary)
	if m.opt.Notify != nil {
		m.opt.Notify(a)
	}
}
