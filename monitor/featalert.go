package monitor

import (
	"fmt"
	"strings"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// KindFeature is the kind of an alert that one network's hellos fail for
// one thing they carry.
const KindFeature = "feature"

// FeatureStats are the figures behind a feature alert, over the network's
// recent window (Window to twice Window buckets): its hellos with the
// feature, its hellos without it, and the other networks' hellos with it
// (the networks alerting for it, or failing with it against their own
// hellos without it, left out).
type FeatureStats struct {
	Feature   string `json:"feature"`
	Completed int    `json:"completed"`
	Failed    int    `json:"failed"`
	// ResetByPath counts the failures ended by a reset that came as from
	// the client with another TTL (hop limit) than the client's packets:
	// sent by something on the path.
	ResetByPath      int     `json:"reset_by_path"`
	WithoutCompleted int     `json:"without_completed"`
	WithoutFailed    int     `json:"without_failed"`
	OthersCompleted  int     `json:"others_completed"`
	OthersFailed     int     `json:"others_failed"`
	OthersNetworks   int     `json:"others_networks"`
	Rate             float64 `json:"completion_rate"`
	// PValue is the larger of the two one-sided binomial tests: the
	// hellos with the feature against the Wilson 95% lower bound of the
	// network's hellos without it, and of the others' with it.
	PValue float64 `json:"p_value"`
	// Also names other features every failing hello may have carried as
	// well (they fit the same figures: the capture cannot tell them apart).
	Also []string `json:"also,omitempty"`
}

// featureTest is the decision rule of a feature alert. It fires only with
// the contrast on both sides: at least MinStalls of the network's hellos
// with the feature failed, while at least MinStalls of its hellos without
// it completed and the other networks' hellos with it (at least MinOthers)
// completed, each at p < Alpha against that side's Wilson lower bound, and
// the network's rate with the feature, shrunk towards the lower of the two
// sides' rates with the weight of Prior hellos, lies MinDrop below it. A
// client that aborts on its own, or a scanner, fails with or without the
// feature (no contrast in its own network); a feature every network fails
// with is not this network's path.
func (m *Monitor) featureTest(f int, with, without, others cell, nets int) (bool, FeatureStats) {
	st := FeatureStats{Feature: features[f].name, Completed: with.completed(), Failed: with.failed(), ResetByPath: with.byPath(),
		WithoutCompleted: without.completed(), WithoutFailed: without.failed(),
		OthersCompleted: others.completed(), OthersFailed: others.failed(), OthersNetworks: nets, PValue: 1}
	if with.total() == 0 || without.total() == 0 || others.total() == 0 {
		return false, st
	}
	st.Rate = float64(with.completed()) / float64(with.total())
	rateWithout := float64(without.completed()) / float64(without.total())
	rateOthers := float64(others.completed()) / float64(others.total())
	pWithout := binomLowerTail(with.completed(), with.total(), wilsonLower(without.completed(), without.total(), 1.96))
	pOthers := binomLowerTail(with.completed(), with.total(), wilsonLower(others.completed(), others.total(), 1.96))
	st.PValue = max(pWithout, pOthers)
	ref := min(rateWithout, rateOthers)
	fire := with.failed() >= m.cfg.MinStalls && without.completed() >= m.cfg.MinStalls && others.total() >= m.cfg.MinOthers &&
		st.PValue < m.cfg.Alpha && shrink(with.completed(), with.total(), ref, m.cfg.Prior) < ref-m.cfg.MinDrop
	return fire, st
}

// evaluateFeatures runs, at the end of bucket b, the feature test of every
// network without a feature alert (each feature against the pool of the
// other networks' hellos with it) and the resolution test of those with
// one. The pool leaves out, per feature, the networks alerting for it and
// those whose own hellos with it fail far and significantly more than
// their hellos without it (fails within): two networks behind such
// devices must not hide each other.
func (m *Monitor) evaluateFeatures(b int64, end time.Time) {
	var pool featTally
	var nets [nFeatures]int
	out := map[*network]uint8{} // the features a network is left out of the pool for
	for _, n := range m.nets {
		w := n.featWindow()
		for f := range nFeatures {
			if n.featAlert != nil && n.featIdx == f || m.failsWithin(w[f][1], w[f][0]) {
				out[n] |= 1 << f
				continue
			}
			pool[f][1] = pool[f][1].plus(w[f][1])
			if w[f][1].total() > 0 {
				nets[f]++
			}
		}
	}
	for _, n := range m.order {
		if n.key == OtherNetwork {
			continue
		}
		if n.featAlert != nil {
			m.featureResolve(n, b, end)
			continue
		}
		if m.server.firing || m.server.low {
			continue // a server-wide drop is one server alert
		}
		w := n.featWindow()
		best, fits := -1, []int(nil)
		var bestSt FeatureStats
		for f := range nFeatures {
			others, on := pool[f][1], nets[f]
			if out[n]&(1<<f) == 0 && w[f][1].total() > 0 {
				others, on = others.minus(w[f][1]), on-1
			}
			fire, st := m.featureTest(f, w[f][1], w[f][0], others, on)
			if !fire {
				continue
			}
			fits = append(fits, f)
			if best < 0 || st.Rate < bestSt.Rate {
				best, bestSt = f, st
			}
		}
		if best < 0 {
			continue
		}
		for _, f := range fits {
			if f != best {
				bestSt.Also = append(bestSt.Also, features[f].name)
			}
		}
		n.featIdx, n.featClean, n.featSeen = best, 0, b
		n.featAlert = m.featureAlert(n, best, bestSt, m.start(b))
		m.emit(*n.featAlert)
	}
	for _, n := range m.nets {
		n.featLast = featTally{}
	}
}

// failsWithin reports whether a network's hellos with a feature fail far
// and significantly more than its hellos without it (MinStalls failures,
// a rate MinDrop lower, p < ResolveAlpha): the looser test that leaves it
// out of the other networks' pool.
func (m *Monitor) failsWithin(with, without cell) bool {
	if with.failed() < m.cfg.MinStalls || without.completed() < m.cfg.MinStalls {
		return false
	}
	rate, rateWithout := float64(with.completed())/float64(with.total()), float64(without.completed())/float64(without.total())
	return rate < rateWithout-m.cfg.MinDrop &&
		binomLowerTail(with.completed(), with.total(), wilsonLower(without.completed(), without.total(), 1.96)) < m.cfg.ResolveAlpha
}

// featureResolve resolves n's feature alert after ResolveAfter evaluations
// in a row in which its hellos with the feature completed without failing
// significantly (p >= ResolveAlpha against its hellos without it), or
// after StaleAfter without such hellos.
func (m *Monitor) featureResolve(n *network, b int64, end time.Time) {
	f := n.featIdx
	last := n.featLast[f][1]
	if last.total() == 0 {
		if end.Sub(m.start(n.featSeen+1)) >= m.cfg.StaleAfter {
			m.featureResolved(n, b, end, "no_traffic")
		}
		return
	}
	n.featSeen = b
	w := n.featWindow()
	lower := wilsonLower(w[f][0].completed(), w[f][0].total(), 1.96)
	if last.completed() == 0 || last.failed() > 0 && binomLowerTail(last.completed(), last.total(), lower) < m.cfg.ResolveAlpha {
		n.featClean = 0
		return
	}
	n.featClean++
	if n.featClean >= m.cfg.ResolveAfter {
		m.featureResolved(n, b, end, "recovered")
	}
}

func (m *Monitor) featureResolved(n *network, b int64, end time.Time, reason string) {
	a := *n.featAlert
	a.State, a.EndsAt, a.Reason = Resolved, end, reason
	what := features[n.featIdx].what
	a.Summary = fmt.Sprintf("%s: ClientHellos with %s complete again", n.label(), what)
	if reason == "no_traffic" {
		a.Summary = fmt.Sprintf("%s: no ClientHellos with %s for %s, alert closed", n.label(), what, m.cfg.StaleAfter)
	}
	// The window's failures are the alert's: they must not fire it, or
	// another feature their hellos also carried, again.
	n.featWin = [2]featTally{}
	n.featLastAlert, n.featAlert = &a, nil
	m.emit(a)
}

func (m *Monitor) featureAlert(n *network, f int, st FeatureStats, start time.Time) *Alert {
	info := features[f]
	d := diagnose.Diagnosis{Verdict: info.verdict, Direction: diagnose.Upstream, Findings: []diagnose.Finding{},
		Fixes: featureFixes(f), Causes: []diagnose.Verdict{info.verdict}}
	detail := fmt.Sprintf("In this network's recent handshakes, ClientHellos with %s failed %d of %d times (reset, TLS alert "+
		"or no answer), while its hellos without it completed %d of %d and other networks' hellos with it completed %d of %d "+
		"(%d networks). A client that aborts on its own fails with or without it; a device on this network's path that rejects "+
		"hellos for %s fails exactly these.", info.what, st.Failed, st.Completed+st.Failed, st.WithoutCompleted,
		st.WithoutCompleted+st.WithoutFailed, st.OthersCompleted, st.OthersCompleted+st.OthersFailed, st.OthersNetworks, info.what)
	if st.ResetByPath > 0 {
		detail += fmt.Sprintf(" %d of the %d failures ended with a reset that came as from the client but with another TTL "+
			"(hop limit) than the client's own packets: something on the path sent it, not the client.", st.ResetByPath, st.Failed)
	}
	if len(st.Also) > 0 {
		var names []string
		for _, a := range st.Also {
			for _, g := range features {
				if g.name == a {
					names = append(names, g.what)
				}
			}
		}
		detail += fmt.Sprintf(" The same figures fit hellos with %s: this network's failing hellos carried both, so the capture "+
			"cannot tell which one the device rejects; %s is named because its hellos failed most consistently.",
			strings.Join(names, " and "), info.what)
	}
	detail += " To confirm from this network, run `mtuscope probe` there (it sends hellos that differ in this one thing) " +
		"or send its users the diagnostic page."
	d.Findings = append(d.Findings, diagnose.Finding{Code: string(info.verdict), Detail: detail, Evidence: map[string]any{
		"feature": info.name, "failed": st.Failed, "reset_by_path": st.ResetByPath, "completed": st.Completed, "without_completed": st.WithoutCompleted,
		"without_failed": st.WithoutFailed, "others_completed": st.OthersCompleted, "others_failed": st.OthersFailed}})
	a := &Alert{
		ID: fmt.Sprintf("feature/%s/%s/%d", n.key, info.name, start.Unix()), Kind: KindFeature, State: Firing,
		Network: n.key, ASN: n.asn, Org: n.org, StartsAt: start, Diagnosis: d, PageURL: m.opt.PageURL, Feature: &st,
		Stats: Stats{Scope: "window", Handshakes: st.Completed + st.Failed, Completed: st.Completed, Rate: st.Rate,
			Others: st.OthersCompleted + st.OthersFailed, OthersNetworks: st.OthersNetworks, PValue: st.PValue},
	}
	if o := st.OthersCompleted + st.OthersFailed; o > 0 {
		a.Stats.OthersRate = float64(st.OthersCompleted) / float64(o)
	}
	byPath := ""
	if st.ResetByPath > 0 {
		byPath = fmt.Sprintf(" (%d reset by something on the path: the reset's TTL was not the client's)", st.ResetByPath)
	}
	a.Summary = fmt.Sprintf("%s: ClientHellos with %s fail: %d of %d failed%s, while this network's hellos without it "+
		"completed %d of %d and other networks' hellos with it completed %d of %d: a device on this network's path rejects "+
		"them (%s). Fix: %s", n.label(), info.what, st.Failed, st.Completed+st.Failed, byPath, st.WithoutCompleted,
		st.WithoutCompleted+st.WithoutFailed, st.OthersCompleted, st.OthersCompleted+st.OthersFailed, info.verdict, info.fix)
	return a
}

// featureFixes returns diagnose's fixes for the cause feature f names, per
// audience: the monitor's alert and probe's report give the same fixes in
// the same words.
func featureFixes(f int) []diagnose.Fix { return diagnose.ContentFixes(features[f].verdict) }
