package asn

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// The database file: a magic, JSON metadata, the organisation strings and
// records, the IPv4 and IPv6 range starts with their records, and a CRC-32C
// of everything before it. Integers are little-endian. Load checks every
// length and invariant, so a damaged file is an error, never a wrong answer.
var dbMagic = []byte("MTUSASN\x01")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by the errors of Decode and Load for damaged files.
var ErrCorrupt = errors.New("corrupt ASN database")

// Encode serialises t.
func (t *Table) Encode() ([]byte, error) {
	meta, err := json.Marshal(t.meta)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	orgLen := 0
	for _, r := range t.recs {
		orgLen += len(r.org)
	}
	size := len(dbMagic) + 4 + len(meta) + 8 + orgLen + 12*len(t.recs) +
		4 + 8*len(t.v4start) + 4 + 20*len(t.v6hi) + 4
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	b = append(b, dbMagic...)
	b = le.AppendUint32(b, uint32(len(meta)))
	b = append(b, meta...)
	b = le.AppendUint32(b, uint32(len(t.recs)))
	b = le.AppendUint32(b, uint32(orgLen))
	for _, r := range t.recs {
		b = append(b, r.org...)
	}
	off := 0
	for _, r := range t.recs {
		b = le.AppendUint32(b, r.asn)
		b = le.AppendUint32(b, uint32(off))
		b = le.AppendUint32(b, uint32(len(r.org)))
		off += len(r.org)
	}
	b = le.AppendUint32(b, uint32(len(t.v4start)))
	for _, v := range t.v4start {
		b = le.AppendUint32(b, v)
	}
	for _, v := range t.v4rec {
		b = le.AppendUint32(b, v)
	}
	b = le.AppendUint32(b, uint32(len(t.v6hi)))
	for _, v := range t.v6hi {
		b = le.AppendUint64(b, v)
	}
	for _, v := range t.v6lo {
		b = le.AppendUint64(b, v)
	}
	for _, v := range t.v6rec {
		b = le.AppendUint32(b, v)
	}
	return le.AppendUint32(b, crc32.Checksum(b, crcTable)), nil
}

// Load reads a database file written by Import.
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load ASN database: %w", err)
	}
	t, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// decoder reads b front to back; the first short read sets err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil || n > uint64(len(d.b)) {
		if d.err == nil {
			d.err = fmt.Errorf("%w: truncated", ErrCorrupt)
		}
		return nil
	}
	x := d.b[:n]
	d.b = d.b[n:]
	return x
}

func (d *decoder) u32() uint32 {
	if x := d.take(4); x != nil {
		return binary.LittleEndian.Uint32(x)
	}
	return 0
}

// count reads an element count and checks that size bytes per element fit.
func (d *decoder) count(size uint64) int {
	n := uint64(d.u32())
	if d.err == nil && n*size > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: count %d does not fit the file", ErrCorrupt, n)
		return 0
	}
	return int(n)
}

// Decode parses a database file image.
func Decode(b []byte) (*Table, error) {
	le := binary.LittleEndian
	if len(b) < len(dbMagic)+4 || string(b[:len(dbMagic)]) != string(dbMagic) {
		return nil, fmt.Errorf("%w: not an mtuscope ASN database (bad magic)", ErrCorrupt)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, crcTable) != le.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	d := &decoder{b: body[len(dbMagic):]}
	t := &Table{}
	if err := json.Unmarshal(d.take(uint64(d.u32())), &t.meta); d.err == nil && err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	nrec := d.count(12)
	orgs := string(d.take(uint64(d.u32())))
	if d.err == nil && nrec == 0 {
		return nil, fmt.Errorf("%w: no records", ErrCorrupt)
	}
	t.recs = make([]record, nrec)
	for i := range t.recs {
		asn, off, n := d.u32(), uint64(d.u32()), uint64(d.u32())
		if d.err == nil && off+n > uint64(len(orgs)) {
			return nil, fmt.Errorf("%w: record %d points outside the names", ErrCorrupt, i)
		}
		if d.err == nil {
			t.recs[i] = record{asn: asn, org: orgs[off : off+n]}
		}
	}
	n4 := d.count(8)
	t.v4start, t.v4rec = make([]uint32, n4), make([]uint32, n4)
	for i := range t.v4start {
		t.v4start[i] = d.u32()
	}
	for i := range t.v4rec {
		t.v4rec[i] = d.u32()
	}
	n6 := d.count(20)
	t.v6hi, t.v6lo, t.v6rec = make([]uint64, n6), make([]uint64, n6), make([]uint32, n6)
	if x := d.take(uint64(16 * n6)); x != nil {
		for i := range n6 {
			t.v6hi[i] = le.Uint64(x[8*i:])
			t.v6lo[i] = le.Uint64(x[8*(n6+i):])
		}
	}
	for i := range t.v6rec {
		t.v6rec[i] = d.u32()
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d stray bytes", ErrCorrupt, len(d.b))
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	t.index()
	return t, nil
}

// check verifies the invariants Lookup relies on.
func (t *Table) check() error {
	if len(t.v4start) == 0 || t.v4start[0] != 0 || len(t.v6hi) == 0 || t.v6hi[0] != 0 || t.v6lo[0] != 0 {
		return fmt.Errorf("%w: ranges do not start at the first address", ErrCorrupt)
	}
	for i := 1; i < len(t.v4start); i++ {
		if t.v4start[i] <= t.v4start[i-1] {
			return fmt.Errorf("%w: IPv4 ranges out of order at %d", ErrCorrupt, i)
		}
	}
	for i := 1; i < len(t.v6hi); i++ {
		if !(u128{t.v6hi[i-1], t.v6lo[i-1]}).less(u128{t.v6hi[i], t.v6lo[i]}) {
			return fmt.Errorf("%w: IPv6 ranges out of order at %d", ErrCorrupt, i)
		}
	}
	for _, recs := range [][]uint32{t.v4rec, t.v6rec} {
		for _, r := range recs {
			if int(r) >= len(t.recs) {
				return fmt.Errorf("%w: record %d out of range", ErrCorrupt, r)
			}
		}
	}
	return nil
}
