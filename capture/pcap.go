package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"time"
)

// pcapReader reads the records of a classic pcap file. It does what
// pcapgo's Reader does (the same checks, errors and timestamps), with one
// large buffer instead of several small ones: a record is handed out as a
// slice of that buffer, so a packet is copied once, from the file into
// the buffer.
type pcapReader struct {
	r         io.Reader
	order     binary.ByteOrder
	bigEndian bool
	nanos     uint32 // nanoseconds per timestamp unit: 1 or 1000
	snaplen   uint32
	link      uint32
	buf       []byte
	off, end  int // buf[off:end] is read and not yet handed out
	eof       error
	maxRecord int
}

// pcapBuffer is the reader's buffer size; it grows for a record larger
// than that (at most as large as the data the file actually holds).
const pcapBuffer = 1 << 20

// pcapgoMaxRecord is pcapgo's bound on a record's length when the snap
// length is smaller: a record may be up to max(snaplen, 256 KiB).
const pcapgoMaxRecord = 262144

func newPcapReader(r io.Reader) (*pcapReader, error) {
	var h [24]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	p := &pcapReader{r: r, buf: make([]byte, pcapBuffer)}
	return p, p.header(h[:])
}

func (p *pcapReader) header(h []byte) error {
	switch magic := binary.LittleEndian.Uint32(h[0:4]); magic {
	case magicPcapNano:
		p.order, p.nanos = binary.LittleEndian, 1
	case 0x4d3cb2a1:
		p.order, p.nanos = binary.BigEndian, 1
	case magicPcapMicro:
		p.order, p.nanos = binary.LittleEndian, 1000
	case 0xd4c3b2a1:
		p.order, p.nanos = binary.BigEndian, 1000
	default:
		return fmt.Errorf("unknown pcap magic %x", magic)
	}
	if v := p.order.Uint16(h[4:6]); v != 2 {
		return fmt.Errorf("unknown pcap major version %d", v)
	}
	if v := p.order.Uint16(h[6:8]); v != 4 {
		return fmt.Errorf("unknown pcap minor version %d", v)
	}
	p.bigEndian = p.order == binary.BigEndian
	p.snaplen = p.order.Uint32(h[16:20])
	p.link = p.order.Uint32(h[20:24])
	p.maxRecord = pcapgoMaxRecord
	if int64(p.snaplen) > pcapgoMaxRecord {
		p.maxRecord = int(min(int64(p.snaplen), 1<<31-1))
	}
	return nil
}

// fill makes at least n bytes available at buf[off:], unless the input
// ends first (then it returns the read error, io.EOF at the end).
func (p *pcapReader) fill(n int) error {
	for p.end-p.off < n {
		if p.eof != nil {
			return p.eof
		}
		if p.off > 0 && (p.off+n > len(p.buf) || p.end == len(p.buf)) {
			p.end = copy(p.buf, p.buf[p.off:p.end])
			p.off = 0
		}
		if p.end == len(p.buf) {
			// A record larger than the buffer: grow it as data arrives,
			// so a length a file merely claims allocates nothing.
			nb := make([]byte, min(2*len(p.buf), max(n, len(p.buf))))
			p.end = copy(nb, p.buf[p.off:p.end])
			p.off, p.buf = 0, nb
		}
		m, err := p.r.Read(p.buf[p.end:])
		p.end += m
		if err != nil {
			p.eof = err
		}
	}
	return nil
}

// buffered is how many bytes were read ahead and not yet handed out.
func (p *pcapReader) buffered() int { return p.end - p.off }

// next returns the next record's data, valid until the following call.
// Errors are io.EOF at the end of the file, io.ErrUnexpectedEOF for a
// file that ends inside a record, or a bad length.
func (p *pcapReader) next() (data []byte, ts time.Time, capLen, length int, err error) {
	if err = p.fill(16); err != nil {
		if err == io.EOF && p.end > p.off {
			err = io.ErrUnexpectedEOF
		}
		return
	}
	h := p.buf[p.off : p.off+16]
	// The four fields, read without the ByteOrder interface (a call each).
	sec, frac, cl, ln := binary.LittleEndian.Uint32(h[0:4]), binary.LittleEndian.Uint32(h[4:8]),
		binary.LittleEndian.Uint32(h[8:12]), binary.LittleEndian.Uint32(h[12:16])
	if p.bigEndian {
		sec, frac, cl, ln = bits.ReverseBytes32(sec), bits.ReverseBytes32(frac), bits.ReverseBytes32(cl), bits.ReverseBytes32(ln)
	}
	ts = time.Unix(int64(sec), int64(frac*p.nanos)).UTC()
	capLen, length = int(cl), int(ln)
	if capLen < 0 || capLen > p.maxRecord {
		return nil, ts, capLen, length, fmt.Errorf("capture length exceeds snap length: %d > %d", capLen, p.snaplen)
	}
	if capLen > length {
		return nil, ts, capLen, length, fmt.Errorf("capture length exceeds original packet length: %d > %d", capLen, length)
	}
	if err = p.fill(16 + capLen); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return
	}
	data = p.buf[p.off+16 : p.off+16+capLen : p.off+16+capLen]
	p.off += 16 + capLen
	return data, ts, capLen, length, nil
}
