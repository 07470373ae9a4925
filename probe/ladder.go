package probe

import (
	"maps"
	"sort"
)

// ladder searches, to the byte, for the largest value in [lo, hi] at which a
// test passes, in rounds of parallel tests: a coarse round over hi, common
// MTU plateaus and evenly spaced rungs, then fine rounds inside the bracket
// between the largest pass and the smallest failure above it. A failure is
// believed only when confirmed: failed twice, or backed by another failure
// above it; a lone failure is tried again, so random loss does not pass for
// a size limit. Values are whatever the caller maps to packet sizes.
//
// A failure is believed only after it failed twice. Since a path's limit
// usually sits on a plateau, a fine round tests the value just above the
// largest pass twice at once, so a limit on a plateau costs two rounds.
type ladder struct {
	lo, hi  int
	plateau []int // preferred coarse values (tried first when in range)
	coarse  int   // rungs in the coarse round
	fine    int   // rungs in a fine round
	pass    map[int]int
	fail    map[int]int
	rounds  int
}

func newLadder(lo, hi int, plateau []int, coarse, fine int) *ladder {
	return &ladder{lo: lo, hi: hi, plateau: plateau, coarse: coarse, fine: fine, pass: map[int]int{}, fail: map[int]int{}}
}

// clone returns an independent copy of l.
func (l *ladder) clone() *ladder {
	c := *l
	c.pass, c.fail = maps.Clone(l.pass), maps.Clone(l.fail)
	return &c
}

// narrow halves the rungs of the fine rounds that follow (down to
// minFine), after a round in which the server or this host was too busy
// to answer in time: fewer handshakes at once load it less, and spend
// less of the run's connection budget on attempts that prove nothing.
func (l *ladder) narrow() { l.fine = max(l.fine/2, minFine) }

// minFine is the fewest rungs narrow leaves a fine round: the bracket
// still shrinks fourfold a round.
const minFine = 4

// record notes one result at v.
func (l *ladder) record(v int, ok bool) {
	if ok {
		l.pass[v]++
	} else {
		l.fail[v]++
	}
}

// maxPass is the largest passing value, 0 if none.
func (l *ladder) maxPass() int {
	m := 0
	for v := range l.pass {
		m = max(m, v)
	}
	return m
}

// bracket returns the largest pass and the smallest failure above it (0 if
// none), and whether that failure is confirmed.
func (l *ladder) bracket() (p, f int, confirmed bool) {
	p = l.maxPass()
	for v, n := range l.fail {
		if v <= p || l.pass[v] > 0 || n == 0 {
			continue
		}
		if f == 0 || v < f {
			f = v
		}
	}
	if f == 0 {
		return p, 0, false
	}
	return p, f, l.fail[f] >= 2
}

// done reports whether the search has its answer.
func (l *ladder) done() bool {
	if l.rounds == 0 {
		return false
	}
	p, f, confirmed := l.bracket()
	switch {
	case p == l.hi:
		return true
	case p == 0:
		return l.fail[l.lo] >= 2 // nothing passes, not even the floor
	case f == p+1:
		return confirmed
	}
	return false
}

// next returns the values for the next round, none when done.
func (l *ladder) next() []int {
	if l.done() {
		return nil
	}
	l.rounds++
	if l.rounds == 1 {
		return l.coarseRound()
	}
	p, f, confirmed := l.bracket()
	var out []int
	if p == 0 {
		if l.fail[l.lo] < 2 {
			out = append(out, l.lo)
		}
		// Nothing passed: look below the smallest failure too.
		if f > l.lo+1 {
			out = append(out, spread(l.lo+1, f-1, l.fine)...)
		}
		return dedupe(out)
	}
	if f == 0 {
		// Failures all retracted by passes above them: test hi again.
		return []int{l.hi}
	}
	if !confirmed {
		out = append(out, f)
	}
	if f > p+1 {
		out = append(out, spread(p+1, f-1, l.fine)...)
	}
	out = dedupe(out)
	if f > p+1 && l.fail[p+1] == 0 {
		out = append(out, p+1) // twice: confirms a limit at p in this round
	}
	return out
}

func (l *ladder) coarseRound() []int {
	out := []int{l.hi, l.lo}
	for _, v := range l.plateau {
		if v > l.lo && v < l.hi && len(out) < l.coarse {
			out = append(out, v)
		}
	}
	if n := l.coarse - len(out); n > 0 {
		out = append(out, spread(l.lo+1, l.hi-1, n)...)
	}
	return dedupe(out)
}

// spread returns at most n values evenly spread over [a, b], all of them
// when the range holds no more than n; the top of the range is included
// so the bracket always shrinks from above.
func spread(a, b, n int) []int {
	if b < a || n <= 0 {
		return nil
	}
	width := b - a + 1
	if width <= n {
		out := make([]int, 0, width)
		for v := a; v <= b; v++ {
			out = append(out, v)
		}
		return out
	}
	out := make([]int, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, b-i*(width-1)/(n-1))
	}
	return out
}

func dedupe(vs []int) []int {
	sort.Sort(sort.Reverse(sort.IntSlice(vs)))
	out := vs[:0]
	for i, v := range vs {
		if i == 0 || v != vs[i-1] {
			out = append(out, v)
		}
	}
	return out
}
