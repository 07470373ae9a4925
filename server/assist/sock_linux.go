//go:build linux

package assist

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// setDF sets Don't Fragment (ignoring learned path MTUs) or lets the
// kernel fragment, for IPv4 and IPv6 sockets alike.
func setDF(c syscall.RawConn, df bool) {
	mode := unix.IP_PMTUDISC_DONT
	if df {
		mode = unix.IP_PMTUDISC_PROBE
	}
	c.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, mode)
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, mode)
	})
}

// smallMSS is the MSS of the assistant's own HTTPS connections: small
// enough that they cross the very black hole the probe looks for.
const smallMSS = 1200

func dialControl(network, _ string, c syscall.RawConn) error {
	if network == "tcp" || network == "tcp4" || network == "tcp6" {
		c.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, smallMSS)
		})
	}
	return nil
}
