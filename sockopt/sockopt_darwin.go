package sockopt

import "syscall"

// netinet/in.h, netinet6/in6.h
const (
	ipDontFrag   = 0x1c // IP_DONTFRAG
	ipv6DontFrag = 0x3e // IPV6_DONTFRAG
)

func setInt(fd uintptr, level, opt, v int) error {
	return syscall.SetsockoptInt(int(fd), level, opt, v)
}
