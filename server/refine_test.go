package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

func TestRefineBracketAndSizes(t *testing.T) {
	seg := func(size int, up, down diagnose.Result) diagnose.SegmentTest {
		return diagnose.SegmentTest{UpSize: size, DownSize: size, Up: up, Down: down}
	}
	p, f, u := diagnose.Passed, diagnose.Failed, diagnose.Untested
	ts := []diagnose.SegmentTest{seg(1380, p, p), seg(1388, p, p), seg(1396, p, f), seg(1404, f, f), seg(1412, u, f)}
	if b := sizeBracket(ts, true); b != [2]int{1396, 1404} {
		t.Errorf("up bracket %v", b)
	}
	if b := sizeBracket(ts, false); b != [2]int{1388, 1396} {
		t.Errorf("down bracket %v", b)
	}
	got := inside([2]int{1396, 1404}, map[int]bool{1400: true})
	want := []int{1397, 1398, 1399, 1401, 1402, 1403}
	if len(got) != len(want) {
		t.Fatalf("inside: %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("inside: %v, want %v", got, want)
		}
	}
	if got := inside([2]int{1500, 0}, nil); got != nil {
		t.Errorf("no failure, still refined: %v", got)
	}
	if got := inside([2]int{1220, 1500}, nil); len(got) != maxRefineSizes {
		t.Errorf("a wide bracket gives %d sizes, want the bound %d", len(got), maxRefineSizes)
	}
}

// TestExactTests reads the acknowledged prefix of an exact-size probe.
func TestExactTests(t *testing.T) {
	sn := snapshot{Kind: kindExact, DownWritten: 64, ExactSizes: []int{1397, 1398, 1399, 1400, 1401},
		ExactEnds: []int64{64 + 1345, 64 + 2691, 64 + 4038, 64 + 5386, 64 + 6735}}
	sn.Info.Valid, sn.Info.BytesAcked = true, 64+5386
	rs := exactTests(4, []snapshot{sn})
	if len(rs) != 5 {
		t.Fatalf("%d results", len(rs))
	}
	for _, r := range rs {
		want := diagnose.Passed
		if r.Test.DownSize > 1400 {
			want = diagnose.Failed
		}
		if r.Test.Down != want || r.Test.Up != diagnose.Untested || r.MSS != r.Test.DownSize-40 {
			t.Errorf("size %d: %+v", r.Test.DownSize, r.Test)
		}
	}
	// A probe whose first small segment was never acknowledged says nothing.
	sn.Info.BytesAcked = 10
	if rs := exactTests(4, []snapshot{sn}); len(rs) != 0 {
		t.Errorf("an unacknowledged probe gave %d results", len(rs))
	}
}

// TestPortPoolQuarantine: ports go round the pool and come back only after
// the quarantine.
func TestPortPoolQuarantine(t *testing.T) {
	now := time.Unix(1000, 0)
	p := newPortPool(9600, 10)
	p.now = func() time.Time { return now }
	client := netip.MustParseAddr("192.0.2.1")
	a := p.take(client, 4)
	p.put(a)
	b := p.take(client, 4)
	if b == nil || b.Ports[0] != 9604 {
		t.Fatalf("second lease %v, want the next ports round the pool", b)
	}
	p.put(b)
	if c := p.take(client, 4); c != nil {
		t.Fatalf("lent %v while the others were in quarantine", c.Ports)
	}
	now = now.Add(portQuarantine)
	if c := p.take(client, 4); c == nil {
		t.Fatal("ports did not come back after the quarantine")
	}
}
