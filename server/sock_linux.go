//go:build linux

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listenTCP listens on addr with every accepted connection's MSS clamped to
// mss (TCP_MAXSEG on the listener; 0 leaves it alone) and the client's SYN
// saved (TCP_SAVE_SYN) so savedSYN can read the MSS it advertised.
func listenTCP(ctx context.Context, network, addr string, mss int) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if mss > 0 {
				if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, mss); serr != nil {
					serr = fmt.Errorf("TCP_MAXSEG %d: %w", mss, serr)
					return
				}
			}
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_SAVE_SYN, 1); serr != nil {
				serr = fmt.Errorf("TCP_SAVE_SYN: %w", serr)
			}
		})
		return errors.Join(err, serr)
	}}
	return lc.Listen(ctx, network, addr)
}

// savedSYN returns the headers of the SYN that opened c (IP header, TCP
// header and options), which the kernel hands out once.
func savedSYN(c syscall.RawConn) ([]byte, error) {
	buf := make([]byte, 512)
	n := uint32(len(buf))
	var errno syscall.Errno
	err := c.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_SAVED_SYN,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
	})
	if err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, fmt.Errorf("TCP_SAVED_SYN: %w", errno)
	}
	return buf[:n], nil
}

// tcpInfo reads the kernel's TCP_INFO for c.
func tcpInfo(c syscall.RawConn) (TCPInfo, error) {
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

// tcpiOptTimestamps is TCPI_OPT_TIMESTAMPS from linux/tcp.h.
const tcpiOptTimestamps = 1

// setDF sets whether datagrams sent on c carry Don't Fragment (ignoring
// any path MTU the kernel learned) or may be fragmented.
func setDF(c syscall.RawConn, df bool) error {
	mode := unix.IP_PMTUDISC_DONT
	if df {
		mode = unix.IP_PMTUDISC_PROBE
	}
	var e4, e6 error
	err := c.Control(func(fd uintptr) {
		e4 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, mode)
		e6 = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, mode)
	})
	if err != nil {
		return err
	}
	if e4 != nil && e6 != nil {
		return fmt.Errorf("IP_MTU_DISCOVER: %w", e4)
	}
	return nil
}
