package analyze

// Byte ranges of one direction of a TCP flow, as offsets from the first
// data byte (the byte after the SYN), and the wire packets that carried them.

// span is a byte range [start, end) of one direction's stream.
type span struct{ start, end uint32 }

func (s span) len() uint32 { return s.end - s.start }

func (s span) overlaps(o span) bool { return s.start < o.end && o.start < s.end }

// wireSplit cuts a segment's payload range into the wire segments it was
// (or became) on the wire: a segmentation-offload super-segment on the
// sending host, or segments merged by GRO on the receiving host, is
// payload-size chunks of at most mss bytes. mss <= 0 leaves it whole.
func wireSplit(s span, mss uint32, fn func(span)) {
	if mss == 0 || s.len() <= mss {
		fn(s)
		return
	}
	for a := s.start; a < s.end; a += mss {
		fn(span{a, min(a+mss, s.end)})
		if a+mss < a { // wrapped: cannot happen below maxStream, but never loop forever
			return
		}
	}
}
