package analyze

import "github.com/mtuscope/mtuscope/flow"

// Byte ranges of one direction of a TCP flow, as offsets from the first
// data byte (the byte after the SYN), and the wire packets that carried them.

// span is a byte range of one direction's stream (flow.Span: the
// tracker's offsets, as its Segments give them).
type span = flow.Span

// wireSplit cuts a segment's payload range into the wire segments it was
// (or became) on the wire: a segmentation-offload super-segment on the
// sending host, or segments merged by GRO on the receiving host, is
// payload-size chunks of at most mss bytes. mss <= 0 leaves it whole.
func wireSplit(s span, mss uint32, fn func(span)) {
	if mss == 0 || s.Len() <= mss {
		fn(s)
		return
	}
	for a := s.Start; a < s.End; a += mss {
		fn(span{Start: a, End: min(a+mss, s.End)})
		if a+mss < a { // wrapped: cannot happen below maxStream, but never loop forever
			return
		}
	}
}
