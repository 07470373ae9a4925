// Package sockopt sets and reads the socket options mtuscope's tests rest
// on: TCP_MAXSEG, TCP_INFO and Don't Fragment, for probe and server alike.
package sockopt

import (
	"errors"
	"syscall"
	"time"

	"github.com/mtuscope/mtuscope/packet"
)

// ErrUnsupported is returned where these socket options are not known.
var ErrUnsupported = errors.New("socket options: not supported on this OS")

// TCPInfo is the part of the kernel's TCP_INFO mtuscope reads; the JSON
// names are the kernel's (linux/tcp.h), as reports and the serve API carry
// them.
type TCPInfo struct {
	// Valid says the values were read (false: the zero value, nothing known).
	Valid         bool  `json:"-"`
	State         uint8 `json:"state"`
	Retransmits   int   `json:"total_retrans"`
	Unacked       int   `json:"unacked"` // segments sent and not yet acknowledged
	SndMSS        int   `json:"snd_mss"` // payload bytes per segment sent
	RcvMSS        int   `json:"rcv_mss"` // the largest payload received (the kernel's estimate)
	AdvMSS        int   `json:"advmss"`
	PMTU          int   `json:"pmtu"`
	RcvOOOPack    int   `json:"rcv_ooopack"`
	BytesAcked    int64 `json:"bytes_acked"`
	BytesReceived int64 `json:"bytes_received"`
	RTTMicros     int   `json:"rtt_us"`
	Timestamps    bool  `json:"timestamps"`
}

// OptionBytes is what TCP options add to every full-size segment's header.
func (ti TCPInfo) OptionBytes() int {
	if ti.Timestamps {
		return packet.TCPTimestampsLen
	}
	return 0
}

// RTT is the kernel's smoothed round-trip time.
func (ti TCPInfo) RTT() time.Duration { return time.Duration(ti.RTTMicros) * time.Microsecond }

// MaxSegControl returns a net.Dialer or net.ListenConfig Control hook that
// sets TCP_MAXSEG mss on TCP sockets before connect or listen (lowering
// both the MSS advertised and the one sent with); 0 sets nothing.
func MaxSegControl(mss int) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		if mss <= 0 || (network != "tcp" && network != "tcp4" && network != "tcp6") {
			return nil
		}
		return SetMaxSeg(c, mss)
	}
}

// BestEffortMaxSeg is MaxSegControl where the OS lets TCP_MAXSEG be set,
// and sets nothing where it does not (ErrUnsupported): for connections
// that a lower MSS helps but that work without it.
func BestEffortMaxSeg(mss int) func(network, address string, c syscall.RawConn) error {
	set := MaxSegControl(mss)
	return func(network, address string, c syscall.RawConn) error {
		if err := set(network, address, c); err != nil && !errors.Is(err, ErrUnsupported) {
			return err
		}
		return nil
	}
}
