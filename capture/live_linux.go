package capture

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/mtuscope/mtuscope/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Ring geometry: blocks of maxBlockSize (a TSO super-segment and its
// headers fit in one), retired to the reader after blockTimeout at the
// latest when traffic is too thin to fill them.
const (
	maxBlockSize = 1 << 20
	blockTimeout = 25 * time.Millisecond
)

// liveSource reads an AF_PACKET TPACKET_V3 ring through gopacket's afpacket.
type liveSource struct {
	name string
	link packet.LinkType
	tp   *afpacket.TPacket
	snap int

	// early runs the filter in user space on packets stamped before the
	// kernel filter was attached (between bind and SO_ATTACH_FILTER, the
	// socket takes everything); nil once a later packet was read.
	early    *bpf.VM
	attached time.Time

	mu     sync.Mutex // held by Next while it reads the ring; Close waits for it
	closed atomic.Bool

	packets, bytes atomic.Uint64

	statsMu sync.Mutex
	dropped uint64 // the kernel's count as of the last Stats, kept after Close
}

// OpenLive starts a live capture on an interface of the current network
// namespace, with a kernel filter for cfg.Ports and ICMP errors. It needs
// CAP_NET_RAW.
func OpenLive(cfg LiveConfig) (Source, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &liveSource{name: cfg.Interface, snap: cfg.Snaplen}
	var (
		iface string
		sock  = afpacket.SocketDgram
		layer = filterIP
	)
	s.link = packet.LinkRaw
	if cfg.Interface != AnyInterface {
		ifi, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return nil, fmt.Errorf("capture: interface %s: %w", cfg.Interface, err)
		}
		iface = ifi.Name
		if len(ifi.HardwareAddr) == 6 || ifi.Flags&net.FlagLoopback != 0 {
			sock, layer, s.link = afpacket.SocketRaw, filterEthernet, packet.LinkEthernet
		}
	}
	prog, err := filterProgram(layer, cfg.Ports, uint32(cfg.Snaplen))
	if err != nil {
		return nil, fmt.Errorf("capture: filter: %w", err)
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("capture: filter: %w", err)
	}
	if s.early, err = bpf.NewVM(prog); err != nil {
		return nil, fmt.Errorf("capture: filter: %w", err)
	}

	page := os.Getpagesize()
	block := maxBlockSize
	if cfg.BufferSize < 2*block {
		block = max(cfg.BufferSize/2/page*page, page)
	}
	opts := []any{
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptSocketType(sock),
		afpacket.OptInterface(iface),
		afpacket.OptFrameSize(page),
		afpacket.OptBlockSize(block),
		afpacket.OptNumBlocks(max(cfg.BufferSize/block, 1)),
		afpacket.OptBlockTimeout(blockTimeout),
		afpacket.OptPollTimeout(cfg.PollTimeout),
		afpacket.OptAddVLANHeader(s.link == packet.LinkEthernet),
	}
	if s.tp, err = afpacket.NewTPacket(opts...); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("capture: live capture on %s needs the CAP_NET_RAW capability "+
				"(run as root, or grant it: setcap cap_net_raw+ep on the binary, AmbientCapabilities=CAP_NET_RAW in a systemd unit): %w",
				cfg.Interface, err)
		}
		return nil, fmt.Errorf("capture: open %s: %w", cfg.Interface, err)
	}
	if err := s.tp.SetBPF(raw); err != nil {
		s.tp.Close()
		return nil, fmt.Errorf("capture: attach filter on %s: %w", cfg.Interface, err)
	}
	s.attached = time.Now()
	if cfg.Promiscuous && iface != "" {
		if err := s.tp.SetPromiscuous(true); err != nil {
			s.tp.Close()
			return nil, fmt.Errorf("capture: promiscuous mode on %s: %w", cfg.Interface, err)
		}
	}
	return s, nil
}

// Next returns the next packet, ErrIdle when none came within the poll
// timeout, or io.EOF once Close was called. The data is valid until the
// next call.
func (s *liveSource) Next() ([]byte, Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return nil, Info{}, io.EOF
		}
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				return nil, Info{}, ErrIdle
			}
			return nil, Info{}, fmt.Errorf("capture %s: %w", s.name, err)
		}
		if s.early != nil {
			if ci.Timestamp.After(s.attached) {
				s.early = nil // the ring is in arrival order: all the rest came filtered
			} else if n, err := s.early.Run(data); err != nil || n == 0 {
				continue
			} else if len(data) > s.snap {
				data = data[:s.snap]
			}
		}
		s.packets.Add(1)
		s.bytes.Add(uint64(len(data)))
		return data, Info{
			Timestamp:     ci.Timestamp,
			CaptureLength: len(data),
			Length:        max(ci.Length, len(data)),
			Link:          s.link,
			Interface:     ci.InterfaceIndex,
		}, nil
	}
}

// Stats returns the packets and bytes Next returned and the packets the
// kernel dropped because the ring was full.
func (s *liveSource) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if !s.closed.Load() {
		s.readDropped()
	}
	return Stats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), Dropped: s.dropped}
}

// readDropped reads the kernel's drop count; statsMu held. The kernel resets
// its counters on every read, afpacket sums them.
func (s *liveSource) readDropped() {
	if _, v3, err := s.tp.SocketStats(); err == nil {
		s.dropped = uint64(v3.Drops())
	}
}

// Close stops the capture; a Next in progress returns within the poll
// timeout, with io.EOF.
func (s *liveSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.readDropped()
	s.tp.Close()
	return nil
}
