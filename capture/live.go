package capture

import (
	"errors"
	"fmt"
	"time"
)

// ErrIdle is what a live source's Next returns when no packet arrived
// within LiveConfig.PollTimeout. It is not a failure: the caller may
// advance its clock (time.Now) and call Next again. File sources never
// return it.
var ErrIdle = errors.New("capture: no packet within the poll timeout")

// AnyInterface captures on every interface of the network namespace.
const AnyInterface = "any"

// Defaults of LiveConfig.
const (
	DefaultSnaplen     = 262144 // tcpdump's: whole TSO super-segments
	DefaultBufferSize  = 32 << 20
	DefaultPollTimeout = 250 * time.Millisecond
)

// LiveConfig configures a live capture.
type LiveConfig struct {
	// Interface is the interface to capture on. An Ethernet (or
	// loopback) interface gives Ethernet frames (Info.Link
	// packet.LinkEthernet) with any VLAN tag the kernel stripped put back
	// in place, as tcpdump writes them. AnyInterface ("any") captures
	// every interface of the namespace from the IP header on (Info.Link
	// packet.LinkRaw, Info.Interface the interface index): a packet that
	// crosses a bridge is seen on each of its ports and on the bridge, as
	// with tcpdump -i any. Interfaces without an Ethernet header (tun,
	// WireGuard) are captured from the IP header on too.
	Interface string
	// Ports are the TCP ports watched, both directions (1 to 64 of them).
	// The kernel filter also keeps ICMP destination-unreachable and ICMPv6
	// error messages (fragmentation-needed, packet-too-big), IPv4 and
	// IPv6, untagged or with one VLAN tag.
	Ports []uint16
	// Snaplen is the most bytes kept of a packet (DefaultSnaplen when 0).
	// A packet larger than a ring block (1 MiB, less for a small buffer)
	// is cut to the block.
	Snaplen int
	// BufferSize is the kernel ring's size, bytes (DefaultBufferSize when
	// 0). Packets that find it full are dropped and counted in
	// Stats.Dropped.
	BufferSize int
	// PollTimeout is how long Next waits for a packet before it returns
	// ErrIdle (DefaultPollTimeout when 0). Close takes effect within it.
	// Packets reach Next in kernel blocks retired at the latest every
	// 25 ms, so that is the added latency at low rates.
	PollTimeout time.Duration
	// Promiscuous puts the interface in promiscuous mode (a mirror port).
	Promiscuous bool
}

func (c LiveConfig) withDefaults() (LiveConfig, error) {
	if c.Interface == "" {
		return c, errors.New("capture: no interface (use \"any\" for all)")
	}
	if c.Snaplen == 0 {
		c.Snaplen = DefaultSnaplen
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = DefaultPollTimeout
	}
	switch {
	case c.Snaplen < 128:
		return c, fmt.Errorf("capture: snap length %d is below 128 bytes", c.Snaplen)
	case c.BufferSize < 1<<16:
		return c, fmt.Errorf("capture: buffer of %d bytes is below 64 KiB", c.BufferSize)
	case c.PollTimeout < time.Millisecond:
		return c, fmt.Errorf("capture: poll timeout %v is below 1 ms", c.PollTimeout)
	}
	for _, p := range c.Ports {
		if p == 0 {
			return c, errors.New("capture: port 0")
		}
	}
	return c, nil
}
