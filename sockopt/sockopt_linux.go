//go:build linux

package sockopt

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpiOptTimestamps is TCPI_OPT_TIMESTAMPS from linux/tcp.h.
const tcpiOptTimestamps = 1

// SetMaxSeg sets TCP_MAXSEG on c.
func SetMaxSeg(c syscall.RawConn, mss int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, mss)
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("TCP_MAXSEG %d: %w", mss, err)
	}
	return nil
}

// ReadTCPInfo reads the kernel's TCP_INFO for c.
func ReadTCPInfo(c syscall.RawConn) (TCPInfo, error) {
	var ti *unix.TCPInfo
	var serr error
	err := c.Control(func(fd uintptr) {
		ti, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if err = errors.Join(err, serr); err != nil {
		return TCPInfo{}, fmt.Errorf("TCP_INFO: %w", err)
	}
	return TCPInfo{
		State: ti.State, Retransmits: int(ti.Total_retrans), Unacked: int(ti.Unacked),
		SndMSS: int(ti.Snd_mss), RcvMSS: int(ti.Rcv_mss), AdvMSS: int(ti.Advmss), PMTU: int(ti.Pmtu),
		RcvOOOPack: int(ti.Rcv_ooopack), BytesAcked: int64(ti.Bytes_acked), BytesReceived: int64(ti.Bytes_received),
		RTTMicros: int(ti.Rtt), Timestamps: ti.Options&tcpiOptTimestamps != 0, Valid: true,
	}, nil
}

// SetDontFragment sets whether datagrams sent on c carry Don't Fragment
// (IP_PMTUDISC_PROBE: DF set, any path MTU the kernel learned ignored, as
// tracepath does) or may be fragmented (IP_PMTUDISC_DONT). It sets the
// IPv4 and the IPv6 option, so that it works on either kind of socket, and
// fails only when neither could be set.
func SetDontFragment(c syscall.RawConn, df bool) error {
	var e4, e6 error
	err := c.Control(func(fd uintptr) {
		e4 = SetDontFragmentFD(int(fd), false, df)
		e6 = SetDontFragmentFD(int(fd), true, df)
	})
	if err != nil {
		return fmt.Errorf("IP_MTU_DISCOVER: %w", err)
	}
	if e4 != nil && e6 != nil {
		return e4
	}
	return nil
}

// SetDontFragmentFD is SetDontFragment for one family's option (IPV6_*
// when v6) on a socket descriptor.
func SetDontFragmentFD(fd int, v6, df bool) error {
	lvl, opt, mode := unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT
	if df {
		mode = unix.IP_PMTUDISC_PROBE
	}
	if v6 {
		lvl, opt, mode = unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT
		if df {
			mode = unix.IPV6_PMTUDISC_PROBE
		}
	}
	if err := unix.SetsockoptInt(fd, lvl, opt, mode); err != nil {
		if v6 {
			return fmt.Errorf("IPV6_MTU_DISCOVER: %w", err)
		}
		return fmt.Errorf("IP_MTU_DISCOVER: %w", err)
	}
	return nil
}
