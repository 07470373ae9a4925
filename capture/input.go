package capture

import (
	"errors"
	"fmt"
	"io"
)

// The bounds every length read from a capture file is checked against
// before anything is read or kept (docs/analyze.md, "Bounded memory for files").
const (
	// MaxRecord is the largest packet record read, in either format: the
	// largest tcpdump writes (its default and largest snap length) and the
	// largest Wireshark reads. A longer record is an error, whatever the
	// file's snap length says.
	MaxRecord = 262144
	// maxOptions is the room a pcapng packet or interface block has for
	// its options beyond its fixed fields and data.
	maxOptions = 128 << 10
	// maxReadBlock is the largest pcapng block read into memory (section
	// header, interface description and packet blocks).
	maxReadBlock = 32 + MaxRecord + maxOptions
	// MaxSkippedBlock is the largest pcapng block that is skipped unread
	// (name resolution, interface statistics, decryption secrets, custom
	// and unknown types): skipping costs no memory, the bound only tells a
	// corrupt length from a block.
	MaxSkippedBlock = 64 << 20
	// MaxInterfaces is the most interfaces a pcapng section may describe.
	MaxInterfaces = 4096
	// inputBuffer is the one buffer a file is read through; every block
	// read into memory fits in it.
	inputBuffer = 1 << 20
)

// input is the buffer both format readers take their records from: one
// fixed buffer, filled from the (decompressed) stream, never grown, so
// that a length a file claims allocates nothing. It knows the offset of
// each byte in the stream, for errors.
type input struct {
	r        io.Reader
	buf      []byte
	off, end int   // buf[off:end] is read and not yet taken
	pos      int64 // stream offset of buf[off]
	mark     int64 // stream offset of the record or block being read
	err      error // the stream's error, once it returned one
}

func newInput(r io.Reader) *input { return &input{r: r, buf: make([]byte, inputBuffer)} }

// fill makes n bytes (at most len(buf)) available at buf[off:]. If the
// stream ends first it returns io.EOF when nothing at all was left, or
// io.ErrUnexpectedEOF when it ends inside the n bytes (a gzip stream cut
// short says so itself); other read errors are returned as they are.
func (in *input) fill(n int) error {
	if n > len(in.buf) {
		return fmt.Errorf("internal: %d bytes asked of a %d-byte buffer", n, len(in.buf))
	}
	for in.end-in.off < n {
		if in.err != nil {
			if in.err == io.EOF && in.end > in.off {
				return io.ErrUnexpectedEOF
			}
			return in.err
		}
		if in.off+n > len(in.buf) {
			in.end = copy(in.buf, in.buf[in.off:in.end])
			in.off = 0
		}
		m, err := in.r.Read(in.buf[in.end:])
		in.end += m
		if err != nil {
			in.err = err
		}
	}
	return nil
}

// peek returns the n bytes at buf[off:] after a successful fill(n).
func (in *input) peek(n int) []byte { return in.buf[in.off : in.off+n : in.off+n] }

// take hands out the next n bytes (after a successful fill(n)).
func (in *input) take(n int) []byte {
	b := in.peek(n)
	in.off += n
	in.pos += int64(n)
	return b
}

// skip discards the next n bytes, reading through the buffer without
// keeping them; a stream that ends first gives io.ErrUnexpectedEOF.
func (in *input) skip(n int64) error {
	for n > 0 {
		if in.end == in.off {
			if err := in.fill(1); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := int(min(n, int64(in.end-in.off)))
		in.take(k)
		n -= int64(k)
	}
	return nil
}
