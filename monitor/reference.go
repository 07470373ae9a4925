package monitor

import "sort"

// reference is what a network's handshakes are compared with over one
// range of buckets: the pooled handshakes of the networks that are
// themselves healthy in that range. A network that is alerting, or whose
// own completion lies far below the healthy majority's, is left out, so
// that one failing network cannot hide another by dragging the others'
// rate down (two failing at once is ordinary: one carrier's overlay, one
// firewall vendor's update, a larger certificate flight).
type reference struct {
	sum      tally
	members  map[*network]tally // the networks in sum, with their figures
	excluded int                // networks with handshakes in the range left out
}

// others returns the reference seen from n, whose figures in the range
// are own: the pool without n when n is in it, how many networks that
// is, and how many other networks were left out.
func (r *reference) others(n *network, own tally) (o tally, nets, excluded int) {
	if _, in := r.members[n]; !in {
		excluded = r.excluded
		if own.attempts() > 0 {
			excluded-- // n itself
		}
		return r.sum, len(r.members), excluded
	}
	o = r.sum
	o.completed -= own.completed
	o.stallUp -= own.stallUp
	o.stallDown -= own.stallDown
	o.failed -= own.failed
	return o, len(r.members) - 1, r.excluded
}

// reference builds the healthy pool over buckets from..to, in three steps:
//  1. the candidates: every network with handshakes in the range that is
//     not alerting (its alert already says it fails; "other" counts too);
//  2. the core: the candidates whose completion rate is at least the
//     median candidate's (the upper median, by network, not by traffic),
//     a first estimate of the healthy rate that a minority of failing
//     networks cannot move, however much of the traffic they carry;
//  3. the pool: every candidate except those that fail against the core
//     (leaving themselves out of it) at the looser level of resolution:
//     a one-sided binomial p below ResolveAlpha against the core's Wilson
//     lower bound, and a completion rate more than MinDrop below the
//     core's. A healthy lossy network is never that far below, so the
//     pool is every healthy network, not the cleanest half.
func (m *Monitor) reference(from, to int64) *reference {
	type cand struct {
		n    *network
		t    tally
		rate float64
	}
	cs := make([]cand, 0, len(m.nets))
	r := &reference{}
	for _, n := range m.nets {
		t := n.sum(from, to)
		if t.attempts() == 0 {
			continue
		}
		if n.firing {
			r.excluded++
			continue
		}
		cs = append(cs, cand{n, t, float64(t.completed) / float64(t.attempts())})
	}
	r.members = make(map[*network]tally, len(cs))
	if len(cs) == 0 {
		return r
	}
	rates := make([]float64, len(cs))
	for i, c := range cs {
		rates[i] = c.rate
	}
	sort.Float64s(rates)
	median := rates[len(rates)/2]
	var core tally
	for _, c := range cs {
		if c.rate >= median {
			core.add(c.t)
		}
	}
	for _, c := range cs {
		ref := core
		if c.rate >= median {
			ref.completed -= c.t.completed
			ref.stallUp -= c.t.stallUp
			ref.stallDown -= c.t.stallDown
		}
		if m.failsAgainst(c.t, ref) {
			r.excluded++
			continue
		}
		r.members[c.n] = c.t
		r.sum.add(c.t)
	}
	return r
}

// failsAgainst reports whether t's completion lies far and significantly
// below ref's (the test that leaves a network out of the reference).
func (m *Monitor) failsAgainst(t, ref tally) bool {
	n, k := t.attempts(), int(t.completed)
	if t.stalls() == 0 || ref.attempts() == 0 {
		return false
	}
	refRate := float64(ref.completed) / float64(ref.attempts())
	if float64(k)/float64(n) >= refRate-m.cfg.MinDrop {
		return false
	}
	lower := wilsonLower(int(ref.completed), ref.attempts(), 1.96)
	return binomLowerTail(k, n, lower) < m.cfg.ResolveAlpha
}

// references caches the reference of each range within one evaluation.
type references struct {
	m    *Monitor
	to   int64
	byLo map[int64]*reference
}

func (rs *references) over(from int64) *reference {
	if r := rs.byLo[from]; r != nil {
		return r
	}
	if rs.byLo == nil {
		rs.byLo = map[int64]*reference{}
	}
	r := rs.m.reference(from, rs.to)
	rs.byLo[from] = r
	return r
}

// test compares a network's tally s with the reference o, which holds
// nets networks: the exact one-sided binomial test of s's completions
// against o's Wilson lower bound, and s's rate shrunk towards o's.
func (m *Monitor) test(scope string, s, o tally, nets, excluded int) (bool, Stats) {
	st := Stats{Scope: scope, Handshakes: s.attempts(), Completed: int(s.completed),
		StalledUp: int(s.stallUp), StalledDown: int(s.stallDown), Others: o.attempts(),
		OthersNetworks: nets, Excluded: excluded}
	if st.Handshakes > 0 {
		st.Rate = float64(s.completed) / float64(st.Handshakes)
	}
	if st.Others == 0 {
		st.PValue = 1
		return false, st
	}
	st.OthersRate = float64(o.completed) / float64(st.Others)
	st.OthersLower = wilsonLower(int(o.completed), st.Others, 1.96)
	st.Shrunk = shrink(int(s.completed), st.Handshakes, st.OthersRate, m.cfg.Prior)
	st.PValue = binomLowerTail(int(s.completed), st.Handshakes, st.OthersLower)
	fire := st.Others >= m.cfg.MinOthers && s.stalls() >= m.cfg.MinStalls &&
		st.PValue < m.cfg.Alpha && st.Shrunk < st.OthersRate-m.cfg.MinDrop
	return fire, st
}
