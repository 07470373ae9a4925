package asn

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// BuildOptions control how sources become a Table.
type BuildOptions struct {
	// Strict makes overlapping ranges an error naming both rows. By default
	// the narrower range wins where ranges overlap (the later row on a tie),
	// each overlap is logged at debug level and counted in the metadata.
	Strict bool
	Logger *slog.Logger // nil discards
}

// ErrOverlap is wrapped by the error Build returns for overlapping ranges
// in strict mode.
var ErrOverlap = errors.New("overlapping ranges")

// ErrNotDataset is wrapped by the errors for input that parses row by row
// but cannot be an IP-to-ASN table: most of its rows overlap others, or it
// holds more ranges than any real dataset.
var ErrNotDataset = errors.New("not an IP-to-ASN dataset")

// maxOverlaps is how many overlapping rows are resolved before the input
// counts as junk, as long as they are at least half of the rows read (the
// real data has one overlap in half a million rows).
const maxOverlaps = 10000

// maxRows bounds the ranges of one family kept while building: eight
// times the largest dataset in use (about 500,000 IPv4 ranges).
const maxRows = 4 << 20

// maxOverlapList is how many overlaps the metadata lists by name.
const maxOverlapList = 20

// span is a range as integers, with where it came from.
type span struct {
	first, last u128
	rec         uint32
	src         uint32
	line        int64
}

func (s span) pos(srcs []SourceMeta) string {
	if s.line > 0 {
		return fmt.Sprintf("%s:%d", srcs[s.src].Name, s.line)
	}
	return srcs[s.src].Name
}

// Build validates the ranges of srcs and builds a Table. Rows with ASN 0
// ("not routed") are left out. Reversed ranges and ranges mixing families
// are errors naming the file and line, and so are overlapping ranges with
// opts.Strict.
func Build(srcs []Source, opts BuildOptions) (*Table, error) {
	b := newBuilder(opts)
	for _, src := range srcs {
		b.source(src.Name, src.Format, src.Attribution)
		for _, r := range src.Ranges {
			if err := b.row(r); err != nil {
				return nil, err
			}
		}
	}
	return b.finish()
}

// builder builds a Table from rows as they are parsed, so memory follows
// the table, not the input: for input sorted by start address (every
// dataset in use) each group of overlapping rows is resolved as soon as a
// row starts past it, and repeated rows are counted, not kept.
type builder struct {
	opts   BuildOptions
	log    *slog.Logger
	recs   []record
	ids    map[record]uint32
	meta   Meta
	v4, v6 family
	rows   int // rows with an AS number, both families
}

// family holds the spans of one address family while they stream in.
type family struct {
	v4       bool
	done     []span // disjoint, sorted; resolved groups
	group    []span // the current group of overlapping rows, sorted by start
	widest   int    // index in group of the row reaching furthest
	raw      []span // unsorted input: every row, resolved at the end
	unsorted bool
}

func newBuilder(opts BuildOptions) *builder {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &builder{opts: opts, log: log, recs: []record{{}}, ids: map[record]uint32{},
		v4: family{v4: true}}
}

// source starts the rows of a new source.
func (b *builder) source(name string, f Format, attribution string) {
	b.meta.Sources = append(b.meta.Sources, SourceMeta{Name: name, Format: f, Attribution: attribution})
}

// row adds one row of the current source.
func (b *builder) row(r Range) error {
	si := len(b.meta.Sources) - 1
	src := &b.meta.Sources[si]
	first, last := Normalize(r.First), Normalize(r.Last)
	perr := func(format string, a ...any) error {
		return &PositionError{Name: src.Name, Line: r.Line, Err: fmt.Errorf(format, a...)}
	}
	if !first.IsValid() || !last.IsValid() {
		return perr("range without a valid start or end")
	}
	if first.Is4() != last.Is4() {
		return perr("range %s-%s mixes IPv4 and IPv6", first, last)
	}
	if last.Less(first) {
		return perr("reversed range: start %s is after end %s", first, last)
	}
	if r.ASN == 0 {
		return nil
	}
	key := record{asn: r.ASN, org: r.Org}
	id, ok := b.ids[key]
	if !ok {
		id = uint32(len(b.recs))
		b.ids[key] = id
		b.recs = append(b.recs, key)
	}
	s := span{first: u128From(first), last: u128From(last), rec: id, src: uint32(si), line: int64(r.Line)}
	src.Ranges++
	b.rows++
	f := &b.v6
	if first.Is4() {
		f = &b.v4
	}
	return b.add(f, s)
}

func (b *builder) add(f *family, s span) error {
	if f.unsorted {
		if n := len(f.raw); n > 0 && f.raw[n-1].first == s.first && f.raw[n-1].last == s.last && f.raw[n-1].rec == s.rec {
			return b.overlap(f, f.raw[n-1], s) // a repeated row: counted, not kept
		}
		if len(f.raw) >= maxRows {
			return b.tooMany(s)
		}
		f.raw = append(f.raw, s)
		return nil
	}
	if n := len(f.group); n > 0 && s.first.less(f.group[n-1].first) {
		// Out of order: keep everything and resolve it at the end. The
		// current group is resolved first, so its overlaps are not counted
		// again; later rows that overlap its pieces are weighed against the
		// pieces, not the original rows (no dataset in use is unsorted).
		if err := b.flush(f); err != nil {
			return err
		}
		f.unsorted = true
		f.raw = append(f.done, s)
		f.done = nil
		return nil
	}
	if len(f.group) > 0 {
		w := f.group[f.widest]
		if !w.last.less(s.first) {
			if err := b.overlap(f, w, s); err != nil {
				return err
			}
			last := f.group[len(f.group)-1]
			if last.first == s.first && last.last == s.last {
				f.group[len(f.group)-1] = s // a repeat: the later row wins a tie anyway
				return nil
			}
			if len(f.group) >= maxRows {
				return b.tooMany(s)
			}
			f.group = append(f.group, s)
			if w.last.less(s.last) {
				f.widest = len(f.group) - 1
			}
			return nil
		}
		if err := b.flush(f); err != nil {
			return err
		}
	}
	f.group = append(f.group[:0], s)
	f.widest = 0
	return nil
}

// flush resolves the current group into done.
func (b *builder) flush(f *family) error {
	if len(f.group) == 1 {
		f.done = append(f.done, f.group[0])
	} else if len(f.group) > 1 {
		f.done = append(f.done, sweep(f.group)...)
	}
	f.group = f.group[:0]
	if len(f.done) > maxRows {
		return b.tooMany(f.done[len(f.done)-1])
	}
	return nil
}

func (b *builder) tooMany(s span) error {
	return &PositionError{Name: b.meta.Sources[s.src].Name, Line: int(s.line),
		Err: fmt.Errorf("%w: more than %d ranges in one address family", ErrNotDataset, maxRows)}
}

// overlap records that s overlaps w: an error in strict mode or when
// overlaps are most of the input, otherwise counted, listed and logged.
func (b *builder) overlap(f *family, w, s span) error {
	srcs := b.meta.Sources
	desc := func(x span) string {
		return fmt.Sprintf("%s (%s-%s AS%d)", x.pos(srcs), x.first.addr(f.v4), x.last.addr(f.v4), b.recs[x.rec].asn)
	}
	if b.opts.Strict {
		return fmt.Errorf("%w: %s and %s; fix the data, or import without --strict "+
			"to let the narrower range win", ErrOverlap, desc(w), desc(s))
	}
	b.meta.Overlaps++
	if b.meta.Overlaps > maxOverlaps && 2*b.meta.Overlaps > b.rows {
		return &PositionError{Name: srcs[s.src].Name, Line: int(s.line),
			Err: fmt.Errorf("%w: %d of %d rows overlap others (repeated lines?)", ErrNotDataset, b.meta.Overlaps, b.rows)}
	}
	if len(b.meta.OverlapList) < maxOverlapList {
		b.meta.OverlapList = append(b.meta.OverlapList, Overlap{A: desc(w), B: desc(s)})
	}
	if b.log.Enabled(context.Background(), slog.LevelDebug) {
		b.log.Debug("overlapping ranges, the narrower wins", "a", desc(w), "b", desc(s))
	}
	return nil
}

// finish resolves what is left and builds the table.
func (b *builder) finish() (*Table, error) {
	t := &Table{recs: b.recs}
	v4, err := b.resolve(&b.v4)
	if err != nil {
		return nil, err
	}
	v6, err := b.resolve(&b.v6)
	if err != nil {
		return nil, err
	}
	boundaries(v4, u128{lo: 1<<32 - 1}, func(first u128, rec uint32) {
		t.v4start = append(t.v4start, uint32(first.lo))
		t.v4rec = append(t.v4rec, rec)
	})
	v4 = nil
	boundaries(v6, u128{^uint64(0), ^uint64(0)}, func(first u128, rec uint32) {
		t.v6hi = append(t.v6hi, first.hi)
		t.v6lo = append(t.v6lo, first.lo)
		t.v6rec = append(t.v6rec, rec)
	})
	v6 = nil
	t.index()
	b.meta.V4Ranges, b.meta.V6Ranges = t.Ranges()
	t.meta = b.meta
	return t, nil
}

// resolve returns the family's spans disjoint, sorted, and with adjacent
// spans of the same record merged.
func (b *builder) resolve(f *family) ([]span, error) {
	var spans []span
	if f.unsorted {
		var err error
		if spans, err = b.flatten(f, f.raw); err != nil {
			return nil, err
		}
		f.raw = nil
	} else {
		if err := b.flush(f); err != nil {
			return nil, err
		}
		spans = f.done
		f.done = nil
	}
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && out[n-1].rec == s.rec && out[n-1].last.inc() == s.first {
			out[n-1].last = s.last
			continue
		}
		out = append(out, s)
	}
	return slices.Clip(out), nil
}

// flatten sorts the spans of unsorted input and resolves its overlaps.
func (b *builder) flatten(f *family, spans []span) ([]span, error) {
	slices.SortStableFunc(spans, func(a, b span) int { return a.first.cmp(b.first) })
	overlaps := false
	widest := -1 // index of the span reaching furthest so far
	for i, s := range spans {
		if widest >= 0 && !spans[widest].last.less(s.first) {
			if err := b.overlap(f, spans[widest], s); err != nil {
				return nil, err
			}
			overlaps = true
		}
		if widest < 0 || spans[widest].last.less(s.last) {
			widest = i
		}
	}
	if overlaps {
		spans = sweep(spans)
	}
	return spans, nil
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
// whole space [0, max], gaps as record 0, handing each to emit.
func boundaries(spans []span, max u128, emit func(first u128, rec uint32)) {
	next := u128{}
	for _, s := range spans {
		if next.less(s.first) {
			emit(next, 0) // a gap
		}
		emit(s.first, s.rec)
		if s.last == max {
			return
		}
		next = s.last.inc()
	}
	emit(next, 0)
}
