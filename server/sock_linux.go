//go:build linux

package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"github.com/mtuscope/mtuscope/sockopt"
	"golang.org/x/sys/unix"
)

// listenTCP listens on addr with every accepted connection's MSS clamped to
// mss (TCP_MAXSEG on the listener; 0 leaves it alone) and the client's SYN
// saved (TCP_SAVE_SYN) so savedSYN can read the MSS it advertised.
func listenTCP(ctx context.Context, network, addr string, mss int) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if mss > 0 {
			if err := sockopt.SetMaxSeg(c, mss); err != nil {
				return err
			}
		}
		var serr error
		err := c.Control(func(fd uintptr) {
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

// openFileLimit returns the process's descriptor limit (RLIMIT_NOFILE, the
// soft limit Go raised to the hard one at start), 0 when unknown.
func openFileLimit() int {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 0
	}
	return int(l.Cur)
}
