package sockopt

import "syscall"

// ws2ipdef.h
const (
	ipDontFrag   = 14 // IP_DONTFRAGMENT
	ipv6DontFrag = 14 // IPV6_DONTFRAG
)

func setInt(fd uintptr, level, opt, v int) error {
	return syscall.SetsockoptInt(syscall.Handle(fd), level, opt, v)
}
