package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/mtuscope/mtuscope/packet"
)

// pcapng block types read; every other type is skipped unread.
const (
	ngSectionHeader = 0x0a0d0d0a
	ngInterface     = 1
	ngPacket        = 2 // obsolete, still written by old tools
	ngSimplePacket  = 3
	ngEnhancedPkt   = 6
	ngByteOrder     = 0x1a2b3c4d
)

// Interface description options read.
const (
	ngOptTSResol  = 9
	ngOptTSOffset = 14
)

// ngIface is what a packet needs of its interface's description.
type ngIface struct {
	link    packet.LinkType
	snaplen uint32
	unit    uint64 // timestamp units per second
	offset  int64  // seconds added to every timestamp (if_tsoffset)
}

// ngReader reads the packets of a pcapng file block by block through the
// fixed input buffer: every block length is checked against a bound
// before the block is read (packet and interface blocks, at most
// maxReadBlock) or skipped (every other type, at most MaxSkippedBlock),
// and a section describes at most MaxInterfaces interfaces. Only what a
// packet needs of its interface is kept.
type ngReader struct {
	in     *input
	order  binary.ByteOrder
	ifaces []ngIface
}

// ngRecord is one packet of a pcapng file.
type ngRecord struct {
	data           []byte
	ts             time.Time
	capLen, length int
	iface          int
	link           packet.LinkType
}

func newNgReader(in *input) (*ngReader, error) {
	r := &ngReader{in: in}
	if err := r.section(); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return r, nil
}

// section reads a section header block: its byte order and version; the
// interfaces of the previous section are forgotten.
func (r *ngReader) section() error {
	if err := r.in.fill(24); err != nil {
		return err
	}
	h := r.in.peek(24)
	switch {
	case binary.LittleEndian.Uint32(h[8:12]) == ngByteOrder:
		r.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[8:12]) == ngByteOrder:
		r.order = binary.BigEndian
	default:
		return fmt.Errorf("pcapng section header without its byte-order magic (%x)", h[8:12])
	}
	total := r.order.Uint32(h[4:8])
	if err := checkBlockLen(total, 28, MaxSkippedBlock); err != nil {
		return err
	}
	if major := r.order.Uint16(h[12:14]); major != 1 {
		return fmt.Errorf("pcapng version %d.%d, not 1.x", major, r.order.Uint16(h[14:16]))
	}
	r.ifaces = r.ifaces[:0]
	return r.in.skip(int64(total)) // options: none is needed
}

// checkBlockLen checks a block's total length before the block is read or
// skipped.
func checkBlockLen(total, least, most uint32) error {
	switch {
	case total%4 != 0 || total < least:
		return fmt.Errorf("pcapng block length %d: not a multiple of 4 of at least %d", total, least)
	case total > most:
		return fmt.Errorf("pcapng block of %d bytes: more than the %d such a block may hold", total, most)
	}
	return nil
}

// next returns the next packet, its data valid until the following call.
// Errors are io.EOF at the end of the file, io.ErrUnexpectedEOF for a
// file that ends inside a block, or what is wrong with a block.
func (r *ngReader) next() (ngRecord, error) {
	for {
		r.in.mark = r.in.pos
		if err := r.in.fill(8); err != nil {
			return ngRecord{}, err
		}
		h := r.in.peek(8)
		typ, total := r.order.Uint32(h[0:4]), r.order.Uint32(h[4:8])
		if binary.LittleEndian.Uint32(h[0:4]) == ngSectionHeader {
			if err := r.section(); err != nil {
				return ngRecord{}, unexpected(err)
			}
			continue
		}
		switch typ {
		case ngInterface, ngPacket, ngSimplePacket, ngEnhancedPkt:
		default:
			if err := checkBlockLen(total, 12, MaxSkippedBlock); err != nil {
				return ngRecord{}, err
			}
			if err := r.in.skip(int64(total)); err != nil {
				return ngRecord{}, err
			}
			continue
		}
		if err := checkBlockLen(total, 12, maxReadBlock); err != nil {
			return ngRecord{}, err
		}
		if err := r.in.fill(int(total)); err != nil {
			return ngRecord{}, unexpected(err)
		}
		b := r.in.peek(int(total))
		if t := r.order.Uint32(b[total-4:]); t != total {
			return ngRecord{}, fmt.Errorf("pcapng block length %d at its start, %d at its end", total, t)
		}
		body := b[8 : total-4]
		if typ == ngInterface {
			if err := r.iface(body); err != nil {
				return ngRecord{}, err
			}
			r.in.take(int(total))
			continue
		}
		rec, err := r.packet(typ, body)
		if err != nil {
			return ngRecord{}, err
		}
		r.in.take(int(total))
		return rec, nil
	}
}

// unexpected turns an io.EOF inside a block into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// iface reads an interface description block's body.
func (r *ngReader) iface(b []byte) error {
	if len(r.ifaces) >= MaxInterfaces {
		return fmt.Errorf("more than %d interfaces described in one pcapng section", MaxInterfaces)
	}
	if len(b) < 8 {
		return fmt.Errorf("pcapng interface description of %d bytes, shorter than 8", len(b))
	}
	ifc := ngIface{link: packet.LinkType(r.order.Uint16(b[0:2])), snaplen: r.order.Uint32(b[4:8]), unit: 1e6}
	for o := 8; o+4 <= len(b); {
		code, n := r.order.Uint16(b[o:o+2]), int(r.order.Uint16(b[o+2:o+4]))
		if code == 0 || o+4+n > len(b) {
			break // end of options, or one that runs past the block: ignored
		}
		v := b[o+4 : o+4+n]
		switch {
		case code == ngOptTSResol && n >= 1:
			exp := v[0] & 0x7f
			if v[0]&0x80 != 0 {
				if exp > 63 {
					return fmt.Errorf("pcapng timestamp resolution 2^-%d: finer than 2^-63", exp)
				}
				ifc.unit = 1 << exp
			} else {
				if exp > 19 {
					return fmt.Errorf("pcapng timestamp resolution 10^-%d: finer than 10^-19", exp)
				}
				ifc.unit = 1
				for range exp {
					ifc.unit *= 10
				}
			}
		case code == ngOptTSOffset && n >= 8:
			ifc.offset = int64(r.order.Uint64(v))
		}
		o += 4 + (n+3)&^3
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// packet reads an enhanced, simple or obsolete packet block's body.
func (r *ngReader) packet(typ uint32, b []byte) (ngRecord, error) {
	var rec ngRecord
	if typ == ngSimplePacket {
		if len(r.ifaces) == 0 {
			return rec, errors.New("pcapng simple packet block before any interface description")
		}
		if len(b) < 4 {
			return rec, fmt.Errorf("pcapng simple packet block of %d bytes", len(b)+12)
		}
		rec.length = int(r.order.Uint32(b[0:4]))
		rec.capLen = min(rec.length, len(b)-4)
		if sl := r.ifaces[0].snaplen; sl != 0 {
			rec.capLen = min(rec.capLen, int(sl))
		}
		rec.data, rec.link = b[4:4+rec.capLen:4+rec.capLen], r.ifaces[0].link
		return rec, nil
	}
	if len(b) < 20 {
		return rec, fmt.Errorf("pcapng packet block of %d bytes, shorter than 32", len(b)+12)
	}
	id := r.order.Uint32(b[0:4])
	if typ == ngPacket {
		id = uint32(r.order.Uint16(b[0:2]))
	}
	if id >= uint32(len(r.ifaces)) {
		return rec, fmt.Errorf("pcapng packet on interface %d; the section describes %d", id, len(r.ifaces))
	}
	capLen, length := r.order.Uint32(b[12:16]), r.order.Uint32(b[16:20])
	if capLen > MaxRecord {
		return rec, fmt.Errorf("record of %d bytes: more than the %d a record may hold", capLen, MaxRecord)
	}
	if int(capLen) > len(b)-20 {
		return rec, fmt.Errorf("pcapng packet of %d bytes in a block with room for %d", capLen, len(b)-20)
	}
	ifc := &r.ifaces[id]
	rec.iface, rec.link = int(id), ifc.link
	rec.capLen, rec.length = int(capLen), int(length)
	rec.data = b[20 : 20+capLen : 20+capLen]
	rec.ts = ifc.time(uint64(r.order.Uint32(b[4:8]))<<32 | uint64(r.order.Uint32(b[8:12])))
	return rec, nil
}

// time converts a timestamp in the interface's units.
func (ifc *ngIface) time(ts uint64) time.Time {
	sec, frac := ts/ifc.unit, ts%ifc.unit
	hi, lo := bits.Mul64(frac, 1e9)
	ns, _ := bits.Div64(hi, lo, ifc.unit) // frac < unit: the quotient fits
	return time.Unix(int64(sec)+ifc.offset, int64(ns)).UTC()
}
