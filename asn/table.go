package asn

import "net/netip"

// indexBits is how many top bits of an address the index covers: 2^20
// buckets (4 MiB per family) leave about one IPv4 range per bucket, so a
// lookup touches the index, one or two entries and the record.
const indexBits = 20

// record is one (ASN, organisation) pair; record 0 means "no ASN".
type record struct {
	asn uint32
	org string
}

// Table is an immutable, in-memory IP-to-ASN table: for each family a
// sorted list of range starts that covers the whole address space (gaps are
// ranges of record 0), and an index by the top 20 bits of the address that
// narrows the binary search to a few entries. It is safe for concurrent use.
type Table struct {
	recs []record

	v4start []uint32
	v4rec   []uint32
	v4ent   []uint64 // start<<32 | record: one cache line holds both
	v4idx   []uint32 // 2^20+1 entries: first entry whose top 20 bits are >= h

	v6hi, v6lo []uint64
	v6rec      []uint32
	v6idx      []uint32 // by the top 20 bits of v6hi

	meta Meta
}

// Meta returns what the table was built from.
func (t *Table) Meta() Meta { return t.meta }

// Lookup returns the ASN, organisation and prefix of addr. Addresses
// without an ASN get the fallback /24 or /48 group and Found false.
func (t *Table) Lookup(addr netip.Addr) Result {
	addr = Normalize(addr)
	if !addr.IsValid() {
		return Result{}
	}
	if addr.Is4() {
		return t.lookup4(addr)
	}
	return t.lookup6(addr)
}

func (t *Table) lookup4(addr netip.Addr) Result {
	b := addr.As4()
	x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if len(t.v4ent) == 0 {
		return fallback(addr)
	}
	h := x >> (32 - indexBits)
	lo, hi := t.v4idx[h], t.v4idx[h+1]
	if lo > 0 {
		lo-- // the range covering h's first address may start below it
	}
	// Last i in [lo, hi) with start[i] <= x; start[lo] <= x holds.
	key := uint64(x)<<32 | 0xffffffff
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if t.v4ent[mid] <= key {
			lo = mid
		} else {
			hi = mid
		}
	}
	e := t.v4ent[lo]
	rec := uint32(e)
	if rec == 0 {
		return fallback(addr)
	}
	first := uint32(e >> 32)
	last := ^uint32(0)
	if int(lo)+1 < len(t.v4ent) {
		last = uint32(t.v4ent[lo+1]>>32) - 1
	}
	r := t.recs[rec]
	return Result{
		Addr: addr, Found: true, ASN: r.asn, Org: r.org,
		Prefix: blockPrefix(u128{lo: uint64(x)}, u128{lo: uint64(first)}, u128{lo: uint64(last)}, 32),
		First:  u128{lo: uint64(first)}.addr(true),
		Last:   u128{lo: uint64(last)}.addr(true),
	}
}

func (t *Table) lookup6(addr netip.Addr) Result {
	x := u128From(addr)
	if len(t.v6hi) == 0 {
		return fallback(addr)
	}
	h := x.hi >> (64 - indexBits)
	lo, hi := t.v6idx[h], t.v6idx[h+1]
	if lo > 0 {
		lo--
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if t.v6hi[mid] < x.hi || (t.v6hi[mid] == x.hi && t.v6lo[mid] <= x.lo) {
			lo = mid
		} else {
			hi = mid
		}
	}
	rec := t.v6rec[lo]
	if rec == 0 {
		return fallback(addr)
	}
	first := u128{t.v6hi[lo], t.v6lo[lo]}
	last := u128{^uint64(0), ^uint64(0)}
	if int(lo)+1 < len(t.v6hi) {
		last = u128{t.v6hi[lo+1], t.v6lo[lo+1]}.dec()
	}
	r := t.recs[rec]
	return Result{
		Addr: addr, Found: true, ASN: r.asn, Org: r.org,
		Prefix: blockPrefix(x, first, last, 128),
		First:  first.addr(false),
		Last:   last.addr(false),
	}
}

// buildIndex fills an index of 2^indexBits+1 entries: idx[h] is the first
// entry whose top bits are >= h.
func buildIndex(n int, top func(i int) uint32) []uint32 {
	idx := make([]uint32, 1<<indexBits+1)
	i := 0
	for h := 0; h <= 1<<indexBits; h++ {
		for i < n && int(top(i)) < h {
			i++
		}
		idx[h] = uint32(i)
	}
	return idx
}

// index derives the lookup structures from the range lists.
func (t *Table) index() {
	t.v4ent = make([]uint64, len(t.v4start))
	for i, s := range t.v4start {
		t.v4ent[i] = uint64(s)<<32 | uint64(t.v4rec[i])
	}
	t.v4idx = buildIndex(len(t.v4start), func(i int) uint32 { return t.v4start[i] >> (32 - indexBits) })
	t.v6idx = buildIndex(len(t.v6hi), func(i int) uint32 { return uint32(t.v6hi[i] >> (64 - indexBits)) })
}

// Ranges returns the number of ranges with an ASN, per family.
func (t *Table) Ranges() (v4, v6 int) {
	for _, r := range t.v4rec {
		if r != 0 {
			v4++
		}
	}
	for _, r := range t.v6rec {
		if r != 0 {
			v6++
		}
	}
	return v4, v6
}
