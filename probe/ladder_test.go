package probe

import (
	"math/rand/v2"
	"slices"
	"testing"
)

var testPlateaus = []int{1452, 1440, 1420, 1410, 1400, 1380, 1360, 1340, 1300, 1240, 1220}

// run drives a ladder against a path where values up to limit pass, with
// the given rounds lost at random (lossy returns true to fail a passing test).
func runLadder(l *ladder, limit int, lossy func() bool) (rounds, tests int) {
	for {
		vs := l.next()
		if len(vs) == 0 {
			return l.rounds, tests
		}
		for _, v := range vs {
			tests++
			l.record(v, v <= limit && !lossy())
		}
		if l.rounds > 20 {
			return l.rounds, tests
		}
	}
}

func TestLadderExact(t *testing.T) {
	never := func() bool { return false }
	for _, tc := range []struct {
		lo, hi, limit int
		maxRounds     int
	}{
		{536, 1460, 1460, 1},  // clean: one round
		{536, 1460, 1360, 2},  // plateau: coarse, then the gap above it
		{536, 1460, 1361, 3},  // one above a plateau
		{536, 1460, 1399, 3},  // just below one
		{536, 1460, 1000, 4},  // far from any plateau
		{536, 1460, 536, 3},   // the floor
		{1220, 1440, 1220, 2}, // IPv6 minimum
		{1220, 1440, 1439, 3},
		{536, 1460, 1459, 3},
	} {
		l := newLadder(tc.lo, tc.hi, testPlateaus, 12, 20)
		rounds, tests := runLadder(l, tc.limit, never)
		if got := l.maxPass(); got != tc.limit || rounds > tc.maxRounds {
			t.Errorf("limit %d in [%d,%d]: found %d in %d rounds (%d tests), want %d in at most %d",
				tc.limit, tc.lo, tc.hi, got, rounds, tests, tc.limit, tc.maxRounds)
		}
	}
	l := newLadder(536, 1460, testPlateaus, 12, 20)
	if runLadder(l, 100, never); l.maxPass() != 0 || !l.done() {
		t.Errorf("nothing passes: maxPass %d done %v", l.maxPass(), l.done())
	}
}

// TestLadderLoss: with one test in fifty lost at random (far more than a
// 1% packet loss costs a handshake), the answer never exceeds the limit
// and is almost always exact; a clean path is never reported limited.
func TestLadderLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lossy := func() bool { return r.IntN(50) == 0 }
	wrong := 0
	for i := 0; i < 1000; i++ {
		limit := []int{1460, 1360, 1000, 1399}[i%4]
		l := newLadder(536, 1460, testPlateaus, 12, 20)
		runLadder(l, limit, lossy)
		got := l.maxPass()
		if got > limit || (limit == 1460 && got != limit) {
			t.Fatalf("run %d: limit %d, found %d (pass %v fail %v)", i, limit, got, l.pass, l.fail)
		}
		if got != limit {
			wrong++
		}
	}
	if wrong > 5 {
		t.Errorf("%d of 1000 runs missed the limit", wrong)
	}
}

func TestSpread(t *testing.T) {
	if got := spread(1, 5, 10); len(got) != 5 {
		t.Errorf("spread(1,5,10) = %v", got)
	}
	got := spread(100, 200, 5)
	if len(got) != 5 || got[0] != 200 || got[4] != 100 {
		t.Errorf("spread(100,200,5) = %v", got)
	}
}

// TestLadderSpeculation: the round a speculation starts (pending rungs
// taken as failures) is, on a path where they do fail, the round the
// ladder asks for next, and the clone leaves the ladder as it was.
func TestLadderSpeculation(t *testing.T) {
	l := newLadder(536, 1460, testPlateaus, 12, 20)
	coarse := l.next()
	var pending []int
	for _, v := range coarse {
		if v <= 1360 {
			l.record(v, true) // the passes are in
		} else {
			pending = append(pending, v)
		}
	}
	c := l.clone()
	for _, v := range pending {
		c.record(v, false)
	}
	spec := c.next()
	if l.rounds != 1 || len(l.fail) != 0 {
		t.Fatalf("the clone changed the ladder: rounds %d, failures %v", l.rounds, l.fail)
	}
	for _, v := range pending {
		l.record(v, false) // as they turn out
	}
	if real := l.next(); !slices.Equal(spec, real) {
		t.Errorf("speculative round %v, real round %v", spec, real)
	}
	for _, v := range spec {
		c.record(v, v <= 1360)
	}
	if !c.done() || c.maxPass() != 1360 {
		t.Errorf("after the speculative round: done %v, max pass %d", c.done(), c.maxPass())
	}
}

// TestLadderNarrow: a ladder narrowed after busy rounds asks for at most
// minFine rungs (and the confirmation of the one above the largest pass)
// a round, and still finds the limit to the byte within the 8 rounds a
// run allows.
func TestLadderNarrow(t *testing.T) {
	for _, limit := range []int{1460, 1360, 1361, 1000, 536} {
		l := newLadder(536, 1460, testPlateaus, 12, 20)
		for _, v := range l.next() {
			l.record(v, v <= limit)
		}
		for range 3 {
			l.narrow()
		}
		most := 0
		for !l.done() && l.rounds < 20 {
			vs := l.next()
			most = max(most, len(vs))
			for _, v := range vs {
				l.record(v, v <= limit)
			}
		}
		if l.maxPass() != limit || most > minFine+2 || l.rounds > 8 {
			t.Errorf("limit %d: found %d in %d rounds, at most %d rungs a round; want the limit in 8 rounds and at most %d rungs",
				limit, l.maxPass(), l.rounds, most, minFine+2)
		}
	}
}
