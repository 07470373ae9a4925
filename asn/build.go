package asn

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// BuildOptions control how sources become a Table.
type BuildOptions struct {
	// AllowOverlaps resolves overlapping ranges by letting the narrower
	// range win (a later row wins a tie) instead of failing; each overlap is
	// logged as a warning.
	AllowOverlaps bool
	Logger        *slog.Logger // nil discards
}

// ErrOverlap is wrapped by the error Build returns for overlapping ranges.
var ErrOverlap = errors.New("overlapping ranges")

// span is a range as integers, with where it came from.
type span struct {
	first, last u128
	rec         uint32
	src, line   int
}

func (s span) pos(srcs []Source) string {
	if s.line > 0 {
		return fmt.Sprintf("%s:%d", srcs[s.src].Name, s.line)
	}
	return srcs[s.src].Name
}

// Build validates the ranges of srcs and builds a Table. Rows with ASN 0
// ("not routed") are left out. Reversed ranges, ranges mixing families and
// (unless allowed) overlapping ranges are errors naming the file and line.
func Build(srcs []Source, opts BuildOptions) (*Table, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Table{recs: []record{{}}}
	ids := map[record]uint32{}
	var v4, v6 []span
	meta := Meta{}
	for si, src := range srcs {
		n := 0
		for _, r := range src.Ranges {
			first, last := Normalize(r.First), Normalize(r.Last)
			perr := func(format string, a ...any) error {
				return &PositionError{Name: src.Name, Line: r.Line, Err: fmt.Errorf(format, a...)}
			}
			if !first.IsValid() || !last.IsValid() {
				return nil, perr("range without a valid start or end")
			}
			if first.Is4() != last.Is4() {
				return nil, perr("range %s-%s mixes IPv4 and IPv6", first, last)
			}
			if last.Less(first) {
				return nil, perr("reversed range: start %s is after end %s", first, last)
			}
			if r.ASN == 0 {
				continue
			}
			key := record{asn: r.ASN, org: r.Org}
			id, ok := ids[key]
			if !ok {
				id = uint32(len(t.recs))
				ids[key] = id
				t.recs = append(t.recs, key)
			}
			s := span{first: u128From(first), last: u128From(last), rec: id, src: si, line: r.Line}
			if first.Is4() {
				v4 = append(v4, s)
			} else {
				v6 = append(v6, s)
			}
			n++
		}
		meta.Sources = append(meta.Sources, SourceMeta{Name: src.Name, Format: src.Format, Attribution: src.Attribution, Ranges: n})
	}
	var err error
	var o4, o6 int
	if v4, o4, err = flatten(v4, true, srcs, t.recs, opts.AllowOverlaps, log); err != nil {
		return nil, err
	}
	if v6, o6, err = flatten(v6, false, srcs, t.recs, opts.AllowOverlaps, log); err != nil {
		return nil, err
	}
	meta.Overlaps = o4 + o6
	t.v4start, t.v4rec = nil, nil
	for _, b := range boundaries(v4, u128{lo: 1<<32 - 1}) {
		t.v4start = append(t.v4start, uint32(b.first.lo))
		t.v4rec = append(t.v4rec, b.rec)
	}
	for _, b := range boundaries(v6, u128{^uint64(0), ^uint64(0)}) {
		t.v6hi = append(t.v6hi, b.first.hi)
		t.v6lo = append(t.v6lo, b.first.lo)
		t.v6rec = append(t.v6rec, b.rec)
	}
	t.index()
	meta.V4Ranges, meta.V6Ranges = t.Ranges()
	t.meta = meta
	return t, nil
}

// flatten sorts spans and returns them without overlaps and with adjacent
// spans of the same record merged, and the number of overlapping rows.
func flatten(spans []span, v4 bool, srcs []Source, recs []record, allow bool, log *slog.Logger) ([]span, int, error) {
	slices.SortStableFunc(spans, func(a, b span) int { return a.first.cmp(b.first) })
	overlaps := 0
	widest := -1 // index of the span reaching furthest so far
	for i, s := range spans {
		if widest >= 0 && !spans[widest].last.less(s.first) {
			w := spans[widest]
			if !allow {
				return nil, 0, fmt.Errorf("%w: %s (%s-%s AS%d) and %s (%s-%s AS%d); "+
					"fix the data, or allow overlaps to let the narrower range win", ErrOverlap,
					w.pos(srcs), w.first.addr(v4), w.last.addr(v4), recs[w.rec].asn,
					s.pos(srcs), s.first.addr(v4), s.last.addr(v4), recs[s.rec].asn)
			}
			overlaps++
			if overlaps <= 10 {
				log.Warn("overlapping ranges, the narrower wins", "a", w.pos(srcs), "b", s.pos(srcs))
			}
		}
		if widest < 0 || spans[widest].last.less(s.last) {
			widest = i
		}
	}
	if overlaps > 0 {
		spans = sweep(spans)
	}
	out := spans[:0:0]
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].rec == s.rec && out[n-1].last.inc() == s.first {
			out[n-1].last = s.last
			continue
		}
		out = append(out, s)
	}
	return out, overlaps, nil
}

// sweep resolves overlaps: over each stretch between boundaries the
// narrowest covering span wins, the later one on a tie.
func sweep(spans []span) []span {
	pts := make([]u128, 0, 2*len(spans))
	for _, s := range spans {
		pts = append(pts, s.first)
		if s.last != (u128{^uint64(0), ^uint64(0)}) {
			pts = append(pts, s.last.inc())
		}
	}
	slices.SortFunc(pts, u128.cmp)
	pts = slices.Compact(pts)
	var h spanHeap
	var out []span
	i := 0
	for k, p := range pts {
		for i < len(spans) && !p.less(spans[i].first) {
			heap.Push(&h, heapItem{spans[i], i})
			i++
		}
		for h.Len() > 0 && h.items[0].s.last.less(p) {
			heap.Pop(&h)
		}
		if h.Len() == 0 {
			continue
		}
		top := h.items[0].s
		end := top.last
		if k+1 < len(pts) && pts[k+1].dec().less(end) {
			end = pts[k+1].dec()
		}
		out = append(out, span{first: p, last: end, rec: top.rec, src: top.src, line: top.line})
	}
	return out
}

type heapItem struct {
	s   span
	ord int
}

// spanHeap orders spans narrowest first, later rows first on a tie.
type spanHeap struct{ items []heapItem }

func (h *spanHeap) Len() int { return len(h.items) }
func (h *spanHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	wa, wb := a.s.last.sub(a.s.first), b.s.last.sub(b.s.first)
	if wa != wb {
		return wa.less(wb)
	}
	return a.ord > b.ord
}
func (h *spanHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *spanHeap) Push(x any)    { h.items = append(h.items, x.(heapItem)) }
func (h *spanHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// boundaries turns sorted, disjoint spans into range starts covering the
// whole space [0, max], gaps as record 0.
func boundaries(spans []span, max u128) []span {
	var out []span
	next := u128{}
	for _, s := range spans {
		if next.less(s.first) {
			out = append(out, span{first: next}) // a gap
		}
		out = append(out, span{first: s.first, rec: s.rec})
		if s.last == max {
			return out
		}
		next = s.last.inc()
	}
	return append(out, span{first: next})
}
