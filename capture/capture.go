// Package capture delivers packets from pcap and pcapng files (also
// gzipped) and, on Linux, live from a network interface, behind one Source
// interface: what reads packets cannot tell a file from a live capture.
package capture

import (
	"time"

	"github.com/mtuscope/mtuscope/packet"
)

// Info describes one captured packet.
type Info struct {
	// Timestamp is when the packet was captured (the file's record, or the
	// kernel's stamp for a live capture).
	Timestamp time.Time
	// CaptureLength is the bytes captured, Length the frame's length on the
	// wire; CaptureLength < Length when the snap length cut the packet.
	CaptureLength int
	Length        int
	// Link is the link-layer header type of this packet's interface (a
	// pcapng file may mix interfaces of several types).
	Link packet.LinkType
	// Interface is the pcapng interface index, or the live interface's index.
	Interface int
}

// Stats are a source's counters so far.
type Stats struct {
	// Packets and Bytes count what Next returned (bytes as captured).
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Dropped counts packets the kernel dropped before the capture read
	// them (capture loss); 0 for files.
	Dropped uint64 `json:"dropped"`
}

// Source is a stream of captured packets.
type Source interface {
	// Next returns the next packet. The data is only valid until the next
	// call. At the end of a file it returns io.EOF; a live source returns
	// ErrIdle when no packet came within its poll timeout (call again), and
	// io.EOF once Close was called.
	Next() (data []byte, ci Info, err error)
	// Stats returns the counters so far; safe to call from any goroutine.
	Stats() Stats
	// Close releases the source.
	Close() error
}
