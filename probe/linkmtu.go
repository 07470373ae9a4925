package probe

import (
	"fmt"
	"net"
	"net/netip"
)

// linkMTU returns the MTU of the interface holding the source address this
// host uses towards addr: the local MTU, before any path MTU the kernel
// learned from ICMP (which routeMTU reports, and which an earlier run or
// another program may have taught it).
func linkMTU(addr netip.Addr) (int, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 9)))
	if err != nil {
		return 0, fmt.Errorf("link mtu: no route to %s: %w", addr, err)
	}
	src := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	c.Close()
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, fmt.Errorf("link mtu: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == src {
				return ifc.MTU, nil
			}
		}
	}
	return 0, fmt.Errorf("link mtu: no interface holds %s", src)
}
