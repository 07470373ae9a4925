package capture

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"
)

// pcapReader reads the records of a classic pcap file. It does what
// pcapgo's Reader does (the same checks and timestamps), except that no
// record may exceed MaxRecord whatever the snap length, and it reads
// through one fixed buffer: a record is handed out as a slice of it, so a
// packet is copied once, from the file into the buffer.
type pcapReader struct {
	in        *input
	bigEndian bool
	nanos     uint32 // nanoseconds per timestamp unit: 1 or 1000
	snaplen   uint32
	link      uint32
}

const (
	pcapHeaderLen = 24
	pcapRecordLen = 16
)

func newPcapReader(in *input) (*pcapReader, error) {
	if err := in.fill(pcapHeaderLen); err != nil {
		return nil, err
	}
	p := &pcapReader{in: in}
	return p, p.header(in.take(pcapHeaderLen))
}

func (p *pcapReader) header(h []byte) error {
	var order binary.ByteOrder
	switch magic := binary.LittleEndian.Uint32(h[0:4]); magic {
	case magicPcapNano:
		order, p.nanos = binary.LittleEndian, 1
	case 0x4d3cb2a1:
		order, p.nanos = binary.BigEndian, 1
	case magicPcapMicro:
		order, p.nanos = binary.LittleEndian, 1000
	case 0xd4c3b2a1:
		order, p.nanos = binary.BigEndian, 1000
	default:
		return fmt.Errorf("unknown pcap magic %x", magic)
	}
	if v := order.Uint16(h[4:6]); v != 2 {
		return fmt.Errorf("unknown pcap major version %d", v)
	}
	if v := order.Uint16(h[6:8]); v != 4 {
		return fmt.Errorf("unknown pcap minor version %d", v)
	}
	p.bigEndian = order == binary.BigEndian
	p.snaplen = order.Uint32(h[16:20])
	p.link = order.Uint32(h[20:24])
	return nil
}

// next returns the next record's data, valid until the following call.
// Errors are io.EOF at the end of the file, io.ErrUnexpectedEOF for a
// file that ends inside a record, or a bad length (checked before the
// record's data is read).
func (p *pcapReader) next() (data []byte, ts time.Time, capLen, length int, err error) {
	p.in.mark = p.in.pos
	if err = p.in.fill(pcapRecordLen); err != nil {
		return
	}
	h := p.in.peek(pcapRecordLen)
	// The four fields, read without the ByteOrder interface (a call each).
	sec, frac, cl, ln := binary.LittleEndian.Uint32(h[0:4]), binary.LittleEndian.Uint32(h[4:8]),
		binary.LittleEndian.Uint32(h[8:12]), binary.LittleEndian.Uint32(h[12:16])
	if p.bigEndian {
		sec, frac, cl, ln = bits.ReverseBytes32(sec), bits.ReverseBytes32(frac), bits.ReverseBytes32(cl), bits.ReverseBytes32(ln)
	}
	ts = time.Unix(int64(sec), int64(frac*p.nanos)).UTC()
	capLen, length = int(cl), int(ln)
	if cl > MaxRecord {
		return nil, ts, capLen, length, fmt.Errorf("record of %d bytes: more than the %d a record may hold (snap length %d)", cl, MaxRecord, p.snaplen)
	}
	if ln == 0 {
		// No frame is empty on the wire: zeros where a record should be
		// (a hole in a sparse or damaged file).
		return nil, ts, capLen, length, fmt.Errorf("record of a 0-byte packet (zeros where a record should be)")
	}
	if cl > ln {
		return nil, ts, capLen, length, fmt.Errorf("capture length exceeds original packet length: %d > %d", cl, ln)
	}
	if err = p.in.fill(pcapRecordLen + capLen); err != nil {
		return
	}
	data = p.in.take(pcapRecordLen + capLen)[pcapRecordLen:]
	return data, ts, capLen, length, nil
}
