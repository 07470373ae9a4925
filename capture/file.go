package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/mtuscope/mtuscope/packet"
)

// Magic numbers at the start of the formats a file source reads.
const (
	magicPcapMicro   = 0xa1b2c3d4
	magicPcapNano    = 0xa1b23c4d
	magicPcapngBlock = 0x0a0d0d0a
)

// ErrFormat says a file is not a pcap or pcapng capture.
var ErrFormat = errors.New("not a pcap or pcapng capture")

// FileError is an error reading a capture file: which file, at which byte
// offset (of the decompressed stream, for a gzipped file).
type FileError struct {
	Path   string
	Offset int64
	Err    error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("capture %s: at byte %d: %v", e.Path, e.Offset, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ErrTruncated says a file ends inside a record: a capture cut short, as
// by a tcpdump killed while writing. The packets before the cut were
// read; the error's offset is where the cut record starts.
var ErrTruncated = errors.New("file ends inside a record (truncated capture)")

// fileSource reads a pcap or pcapng file, streamed through one fixed
// buffer: memory does not grow with the file, nor with any length the
// file states (each is checked against the bounds in input.go first).
type fileSource struct {
	path    string
	f       *os.File
	gz      *gzip.Reader
	in      *input
	pcap    *pcapReader
	link    packet.LinkType // pcap: the file's link type
	ng      *ngReader
	closed  bool
	ended   bool // Next returned an error: the end from now on
	packets atomic.Uint64
	bytes   atomic.Uint64
}

// OpenFile opens a pcap or pcapng capture, gzipped or not; the format is
// read from the content, not the name.
func OpenFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	s, err := newFileSource(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func newFileSource(path string, f *os.File) (*fileSource, error) {
	s := &fileSource{path: path, f: f}
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &FileError{path, 0, fmt.Errorf("gzip: %w", err)}
		}
		gz.Multistream(true)
		s.gz, r = gz, gz
	}
	s.in = newInput(r)
	if err := s.in.fill(4); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: the file is empty or shorter than a header", ErrFormat)
		}
		return nil, &FileError{path, 0, err}
	}
	magic := s.in.peek(4)
	var err error
	switch {
	case isPcapMagic(magic):
		if s.pcap, err = newPcapReader(s.in); err == nil {
			s.link = packet.LinkType(s.pcap.link)
		}
	case binary.LittleEndian.Uint32(magic) == magicPcapngBlock:
		s.ng, err = newNgReader(s.in)
	default:
		return nil, &FileError{path, 0, fmt.Errorf("%w (starts with %x)", ErrFormat, magic)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("file ends inside its header: %w", err)
	}
	if err != nil {
		return nil, &FileError{path, s.in.pos, err}
	}
	return s, nil
}

// isPcapMagic reports whether b starts a classic pcap file.
func isPcapMagic(b []byte) bool {
	le, be := binary.LittleEndian.Uint32(b), binary.BigEndian.Uint32(b)
	return le == magicPcapMicro || le == magicPcapNano || be == magicPcapMicro || be == magicPcapNano
}

// Next returns the next packet of the file. At the end it returns io.EOF;
// for a file cut inside a record a *FileError wrapping ErrTruncated (the
// packets before were all returned), and for any other fault a *FileError
// saying what is wrong at which offset. After an error, io.EOF.
func (s *fileSource) Next() ([]byte, Info, error) {
	if s.closed {
		return nil, Info{}, &FileError{s.path, 0, os.ErrClosed}
	}
	if s.ended {
		return nil, Info{}, io.EOF
	}
	var (
		data []byte
		info Info
		err  error
	)
	if s.pcap != nil {
		data, info.Timestamp, info.CaptureLength, info.Length, err = s.pcap.next()
		info.Link = s.link
	} else {
		var rec ngRecord
		rec, err = s.ng.next()
		data, info = rec.data, Info{Timestamp: rec.ts, CaptureLength: rec.capLen, Length: rec.length, Link: rec.link, Interface: rec.iface}
	}
	if err != nil {
		s.ended = true
		return nil, Info{}, s.readError(s.in.mark, err)
	}
	s.packets.Add(1)
	s.bytes.Add(uint64(len(data)))
	return data, info, nil
}

// readError is what Next returns for a reader's error: the record that
// failed starts at start.
func (s *fileSource) readError(start int64, err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FileError{s.path, start, ErrTruncated}
	}
	return &FileError{s.path, start, err}
}

func (s *fileSource) Stats() Stats {
	return Stats{Packets: s.packets.Load(), Bytes: s.bytes.Load()}
}

func (s *fileSource) Close() error {
	s.closed = true
	if s.gz != nil {
		s.gz.Close()
	}
	return s.f.Close()
}
