//go:build windows || darwin

package sockopt

import (
	"errors"
	"fmt"
	"syscall"
)

// SetMaxSeg returns ErrUnsupported: Windows offers no TCP_MAXSEG to set,
// and macOS's was not verified to lower the MSS a SYN advertises, so
// probe's portable mode does without it on both.
func SetMaxSeg(syscall.RawConn, int) error { return ErrUnsupported }

// ReadTCPInfo returns ErrUnsupported: probe's portable mode reads what it
// needs from the server (the exact-size service) instead.
func ReadTCPInfo(syscall.RawConn) (TCPInfo, error) { return TCPInfo{}, ErrUnsupported }

// SetDontFragmentFD returns ErrUnsupported (the Linux tests that use it do
// not run here).
func SetDontFragmentFD(int, bool, bool) error { return ErrUnsupported }

// SetDontFragment sets or clears Don't Fragment on the datagrams sent on c
// (IP_DONTFRAGMENT on Windows, IP_DONTFRAG on macOS, and their IPv6
// twins). Unlike Linux's IP_PMTUDISC_PROBE it does not bypass a path MTU
// the system learned. It sets both families' option and fails only when
// neither could be set.
func SetDontFragment(c syscall.RawConn, df bool) error {
	v := 0
	if df {
		v = 1
	}
	var e4, e6 error
	err := c.Control(func(fd uintptr) {
		e4 = setInt(fd, syscall.IPPROTO_IP, ipDontFrag, v)
		e6 = setInt(fd, syscall.IPPROTO_IPV6, ipv6DontFrag, v)
	})
	if err != nil {
		return fmt.Errorf("don't fragment: %w", err)
	}
	if e4 != nil && e6 != nil {
		return fmt.Errorf("don't fragment: %w", errors.Join(e4, e6))
	}
	return nil
}
