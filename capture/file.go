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

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
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

// packetReader is what pcapgo's pcap and pcapng readers have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// fileSource reads a pcap or pcapng file, streamed: memory does not grow
// with the file.
type fileSource struct {
	path    string
	f       *os.File
	gz      *gzip.Reader
	count   *countingReader
	r       packetReader
	pcap    *pcapReader
	link    packet.LinkType // pcap: the file's link type
	ng      *pcapgo.NgReader
	closed  bool
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
	var in io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &FileError{path, 0, fmt.Errorf("gzip: %w", err)}
		}
		gz.Multistream(true)
		s.gz = gz
		in = bufio.NewReaderSize(gz, 1<<16)
	}
	s.count = &countingReader{r: in}
	magicBuf := make([]byte, 4)
	pr := bufio.NewReaderSize(s.count, 1<<16)
	head, err := pr.Peek(4)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: the file is empty or shorter than a header", ErrFormat)
		}
		return nil, &FileError{path, 0, err}
	}
	copy(magicBuf, head)
	le := binary.LittleEndian.Uint32(magicBuf)
	switch {
	case isPcapMagic(magicBuf):
		r, err := newPcapReader(pr)
		if err != nil {
			return nil, &FileError{path, s.offset(pr), err}
		}
		s.pcap, s.link = r, packet.LinkType(r.link)
		s.count.buffered = func() int { return pr.Buffered() + r.buffered() }
		return s, nil
	case le == magicPcapngBlock:
		r, err := pcapgo.NewNgReader(pr, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, &FileError{path, s.offset(pr), err}
		}
		s.r, s.ng = r, r
	default:
		return nil, &FileError{path, 0, fmt.Errorf("%w (starts with %x)", ErrFormat, magicBuf)}
	}
	s.count.buffered = pr.Buffered
	return s, nil
}

// isPcapMagic reports whether b starts a classic pcap file.
func isPcapMagic(b []byte) bool {
	le, be := binary.LittleEndian.Uint32(b), binary.BigEndian.Uint32(b)
	return le == magicPcapMicro || le == magicPcapNano || be == magicPcapMicro || be == magicPcapNano
}

func (s *fileSource) offset(pr *bufio.Reader) int64 { return s.count.n - int64(pr.Buffered()) }

// Next returns the next packet of the file.
func (s *fileSource) Next() ([]byte, Info, error) {
	if s.closed {
		return nil, Info{}, &FileError{s.path, 0, os.ErrClosed}
	}
	if s.pcap != nil {
		data, ts, capLen, length, err := s.pcap.next()
		if err != nil {
			return nil, Info{}, s.readError(err)
		}
		s.packets.Add(1)
		s.bytes.Add(uint64(len(data)))
		return data, Info{Timestamp: ts, CaptureLength: capLen, Length: length, Link: s.link}, nil
	}
	data, ci, err := s.r.ZeroCopyReadPacketData()
	if err != nil {
		return nil, Info{}, s.readError(err)
	}
	info := Info{Timestamp: ci.Timestamp, CaptureLength: ci.CaptureLength, Length: ci.Length, Link: s.link, Interface: ci.InterfaceIndex}
	if s.ng != nil {
		info.Link = packet.LinkEthernet
		if len(ci.AncillaryData) > 0 {
			if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				info.Link = packet.LinkType(lt)
			}
		}
	}
	s.packets.Add(1)
	s.bytes.Add(uint64(len(data)))
	return data, info, nil
}

// readError is what Next returns for a reader's error.
func (s *fileSource) readError(err error) error {
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("file ends inside a record (truncated capture): %w", err)
	}
	return &FileError{s.path, s.count.pos(), err}
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

// countingReader counts the bytes read through it, for error offsets.
type countingReader struct {
	r        io.Reader
	n        int64
	buffered func() int // bytes read ahead by the reader on top
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// pos is the offset of the next byte the packet reader will consume.
func (c *countingReader) pos() int64 {
	if c.buffered == nil {
		return c.n
	}
	return c.n - int64(c.buffered())
}
