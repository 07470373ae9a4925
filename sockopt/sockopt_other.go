//go:build !linux && !windows && !darwin

package sockopt

import "syscall"

// SetMaxSeg returns ErrUnsupported.
func SetMaxSeg(syscall.RawConn, int) error { return ErrUnsupported }

// ReadTCPInfo returns ErrUnsupported.
func ReadTCPInfo(syscall.RawConn) (TCPInfo, error) { return TCPInfo{}, ErrUnsupported }

// SetDontFragment returns ErrUnsupported.
func SetDontFragment(syscall.RawConn, bool) error { return ErrUnsupported }

// SetDontFragmentFD returns ErrUnsupported.
func SetDontFragmentFD(int, bool, bool) error { return ErrUnsupported }
