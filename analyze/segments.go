package analyze

// Byte ranges of one direction of a TCP flow, as offsets from the first
// data byte (the byte after the SYN), and the wire packets that carried them.

// span is a byte range [start, end) of one direction's stream.
type span struct{ start, end uint32 }

func (s span) len() uint32 { return s.end - s.start }

func (s span) overlaps(o span) bool { return s.start < o.end && o.start < s.end }

// spanSet is a small sorted set of disjoint byte ranges with a cap on the
// number of ranges it keeps (past the cap, new disjoint ranges are dropped:
// the set then under-reports coverage, never over-reports it).
type spanSet struct {
	r []span
}

const maxSpans = 32

// add inserts s, merging it with the ranges it touches.
func (ss *spanSet) add(s span) {
	if s.end <= s.start {
		return
	}
	if n := len(ss.r); n > 0 {
		// The common cases: the stream goes on where it was, or leaves a
		// gap after everything so far.
		last := &ss.r[n-1]
		switch {
		case s.start >= last.start && s.start <= last.end:
			last.end = max(last.end, s.end)
			return
		case s.start > last.end && n < maxSpans:
			ss.r = append(ss.r, s)
			return
		}
	} else {
		ss.r = append(ss.r, s)
		return
	}
	out := ss.r[:0:0]
	placed := false
	for _, x := range ss.r {
		switch {
		case x.end < s.start:
			out = append(out, x)
		case s.end < x.start:
			if !placed {
				out = append(out, s)
				placed = true
			}
			out = append(out, x)
		default: // touching or overlapping: merge into s
			s.start, s.end = min(s.start, x.start), max(s.end, x.end)
		}
	}
	if !placed {
		out = append(out, s)
	}
	if len(out) > maxSpans {
		return
	}
	ss.r = out
}

// covers reports whether s lies wholly inside one range of the set.
func (ss *spanSet) covers(s span) bool {
	for _, x := range ss.r {
		if x.start <= s.start && s.end <= x.end {
			return true
		}
	}
	return false
}

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
