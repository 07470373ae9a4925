package analyze

import (
	"fmt"

	"github.com/mtuscope/mtuscope/diagnose"
)

// maxUndecidedSizes bounds the distinct sizes of undecided packets kept
// per direction of a path; packets past it are counted without a size.
const maxUndecidedSizes = 256

// noteUndecided records a packet whose fate says nothing of its size:
// delivered inside a merged segment, lost together with a larger packet
// or after an ICMP too-big, recovered in smaller packets, or unknown when
// the capture ended.
func (d *dirAgg) noteUndecided(size int) {
	if d.undecided == nil {
		d.undecided = map[int]int{}
	}
	if _, ok := d.undecided[size]; ok || len(d.undecided) < maxUndecidedSizes {
		d.undecided[size]++
	} else {
		d.undecidedOver++
	}
}

// undecidedBetween counts the undecided packets larger than lo and
// smaller than hi (those past maxUndecidedSizes included: they may be).
func (d *dirAgg) undecidedBetween(lo, hi int) int {
	n := d.undecidedOver
	for size, c := range d.undecided {
		if size > lo && size < hi {
			n += c
		}
	}
	return n
}

// sentInBracket counts, in the directions that lost packets silently
// above their delivered sizes, the packets sent between delivered (the
// largest packet diagnose takes as delivered) and the smallest lost whose
// fate says nothing of their size.
func (a *pathAgg) sentInBracket(delivered int) int {
	lost, n := 0, 0
	for i := range a.dir {
		if m := a.dir[i].minSilent(); m > 0 {
			lost = minPositive(lost, m)
		}
	}
	if lost == 0 || delivered == 0 {
		return 0
	}
	for i := range a.dir {
		if a.dir[i].silentAbove() > 0 {
			n += a.dir[i].undecidedBetween(delivered, lost)
		}
	}
	return n
}

// Reason says why the bracket is no narrower, for a headline: "nothing
// between 631 and 1499 bytes was sent".
func (b MTUBracket) Reason() string {
	if b.Lost == 0 || b.Delivered == 0 {
		return ""
	}
	from, to := b.Delivered+1, b.Lost-1
	if b.SentBetween == 0 {
		return fmt.Sprintf("nothing between %d and %d bytes was sent", from, to)
	}
	return fmt.Sprintf("the %d packets sent between %d and %d bytes say nothing of the size", b.SentBetween, from, to)
}

// passedFloor is the path MTU diagnose takes from segment tests: the
// smaller of the two directions' largest passed sizes.
func passedFloor(ts []diagnose.SegmentTest) int {
	var upMax, downMax int
	for _, t := range ts {
		if t.Up == diagnose.Passed {
			upMax = max(upMax, t.UpSize)
		}
		if t.Down == diagnose.Passed {
			downMax = max(downMax, t.DownSize)
		}
	}
	return minPositive(upMax, downMax)
}
