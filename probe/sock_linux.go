//go:build linux

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
	"golang.org/x/sys/unix"
)

// supported reports whether this OS has the socket options the tests need.
const supported = true

// routeMTU returns the MTU of the route towards addr, as the kernel knows it
// now (the interface MTU, or a path MTU it learned from ICMP).
func routeMTU(addr netip.Addr) (int, error) {
	fam, lvl, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_MTU
	if addr.Is6() {
		fam, lvl, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_MTU
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("route mtu: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sockaddr(addr, 9)); err != nil {
		return 0, fmt.Errorf("route mtu: no route to %s: %w", addr, err)
	}
	mtu, err := unix.GetsockoptInt(fd, lvl, opt)
	if err != nil {
		return 0, fmt.Errorf("route mtu: %w", err)
	}
	return mtu, nil
}

func sockaddr(a netip.Addr, port int) unix.Sockaddr {
	if a.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: port, Addr: a.As16()}
}

// udpProbe sends one datagram making an IP packet of size bytes to a port
// that should be closed, with Don't Fragment (IP_PMTUDISC_PROBE: set DF but
// ignore the cached path MTU, as tracepath does) or allowed to fragment, and
// waits for the answer on the error queue (IP_RECVERR): a port unreachable
// means the datagram arrived; a frag-needed / packet-too-big names the MTU
// and the router that said so. Silence is reported as Verified only when
// it cannot be the server's ICMP rate limit (see udpPacer).
func udpProbe(ctx context.Context, addr netip.Addr, port, size int, df bool, timeout time.Duration, pacer *udpPacer) udpAnswer {
	ans := udpAnswer{Answer: diagnose.AnswerNone}
	fd, err := udpSocket(addr, port, df)
	if err != nil {
		ans.Err = err
		return ans
	}
	defer unix.Close(fd)
	hdr := packet.IPv4HeaderLen + packet.UDPHeaderLen
	if addr.Is6() {
		hdr = packet.IPv6HeaderLen + packet.UDPHeaderLen
	}
	payload := make([]byte, max(size-hdr, 0))
	copy(payload, "mtuscope probe: please ignore")
	// A first copy, then pairs of copies once the server's ICMP token
	// bucket has surely refilled; silence is verified after two pairs
	// that each had a token to themselves (see udpPacer).
	clearSilent := 0
	for ans.Sent < 7 {
		n := 1
		if ans.Sent > 0 {
			n = 2
		}
		sentAt := time.Now()
		if !sendCopies(fd, addr, payload, n, &ans) {
			return ans
		}
		wait := timeout
		if ans.Sent == 1 {
			wait = max(timeout, time.Until(pacer.start.Add(icmpRefill)))
		}
		switch awaitAnswer(ctx, fd, wait, df, pacer, &ans) {
		case udpRefragment:
			continue
		case udpDone:
			return ans
		}
		// A pair sent together shares whatever single token the server
		// has refilled (earlier runs from this host may have drained the
		// rest): only one of its copies surely had a token of its own.
		if pacer.clear(sentAt, time.Now()) {
			clearSilent++
		}
		if clearSilent >= 2 {
			ans.Verified = true
			return ans
		}
		// Wait for a token the other probes did not take.
		if d := time.Until(pacer.last().Add(icmpRefill)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ans
			}
		}
	}
	return ans
}

// sendCopies sends n copies of payload and counts them in ans; false when
// the probe ends there (this host refused the size: ans says so, with its
// route MTU; or a send failed: ans.Err).
func sendCopies(fd int, addr netip.Addr, payload []byte, n int, ans *udpAnswer) bool {
	for i := 0; i < n; i++ {
		if err := unix.Send(fd, payload, 0); err != nil {
			if errors.Is(err, unix.EMSGSIZE) {
				ans.Answer, ans.LocalTooBig = diagnose.AnswerLocalEMSGSIZE, true
				lvl, opt := unix.IPPROTO_IP, unix.IP_MTU
				if addr.Is6() {
					lvl, opt = unix.IPPROTO_IPV6, unix.IPV6_MTU
				}
				ans.MTU, _ = unix.GetsockoptInt(fd, lvl, opt)
				return false
			}
			// An error queued by an earlier copy surfaces here.
			if !errors.Is(err, unix.ECONNREFUSED) {
				ans.Err = err
				return false
			}
		}
		ans.Sent++
	}
	return true
}

// What awaitAnswer saw.
const (
	udpSilent     = iota // nothing came back within the wait
	udpDone              // an answer (in ans), an error or the run's end: the probe ends
	udpRefragment        // frag-needed on a datagram that may fragment: send again
)

// awaitAnswer polls the socket's error queue for up to wait.
func awaitAnswer(ctx context.Context, fd int, wait time.Duration, df bool, pacer *udpPacer, ans *udpAnswer) int {
	end := time.Now().Add(wait)
	for time.Now().Before(end) {
		if ctx.Err() != nil {
			return udpDone
		}
		step := min(time.Until(end), 50*time.Millisecond)
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLERR | unix.POLLIN}}
		if _, err := unix.Poll(pfd, int(max(step.Milliseconds(), 1))); err != nil && !errors.Is(err, unix.EINTR) {
			ans.Err = err
			return udpDone
		}
		if readErrQueue(fd, ans) {
			if ans.Answer == diagnose.AnswerFragNeeded && !df {
				// The kernel now knows the smaller MTU and fragments
				// the next copy to fit: send it.
				return udpRefragment
			}
			if ans.Answer == diagnose.AnswerPortUnreachable {
				pacer.answered(time.Now())
			}
			return udpDone
		}
	}
	return udpSilent
}

// readErrQueue drains the socket's error queue into ans and reports whether
// it held an answer.
func readErrQueue(fd int, ans *udpAnswer) bool {
	buf := make([]byte, 512)
	oob := make([]byte, 512)
	_, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, unix.MSG_ERRQUEUE)
	if err != nil {
		return false
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return false
	}
	_ = from
	for _, m := range msgs {
		isV4 := m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR
		isV6 := m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if !isV4 && !isV6 || len(m.Data) < 16 {
			continue
		}
		ee := unix.SockExtendedErr{
			Errno: binary.NativeEndian.Uint32(m.Data[0:4]), Origin: m.Data[4], Type: m.Data[5], Code: m.Data[6],
			Info: binary.NativeEndian.Uint32(m.Data[8:12]),
		}
		if len(m.Data) >= 16+4 {
			ans.From = offender(m.Data[16:])
		}
		switch syscall.Errno(ee.Errno) {
		case unix.ECONNREFUSED:
			ans.Answer = diagnose.AnswerPortUnreachable
		case unix.EMSGSIZE:
			ans.Answer, ans.MTU = diagnose.AnswerFragNeeded, int(ee.Info)
		default:
			ans.Answer = diagnose.AnswerICMPError
			ans.ICMPType, ans.ICMPCode = int(ee.Type), int(ee.Code)
		}
		return true
	}
	return false
}

// offender decodes the sockaddr that follows sock_extended_err.
func offender(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	family := int(b[0]) | int(b[1])<<8
	switch {
	case family == unix.AF_INET && len(b) >= 8:
		return netip.AddrFrom4([4]byte(b[4:8])).String()
	case family == unix.AF_INET6 && len(b) >= 24:
		return netip.AddrFrom16([16]byte(b[8:24])).String()
	}
	return ""
}
