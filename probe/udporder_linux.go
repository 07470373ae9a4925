//go:build linux

package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/sockopt"
	"golang.org/x/sys/unix"
)

// orderedGrace is how long after the control's answer an answer to a
// datagram sent before it is still awaited: the server answers in arrival
// order and the answers travel the same way back, so it would be there
// first; the grace covers scheduling, not the path.
const orderedGrace = 50 * time.Millisecond

// udpOrdered is the quick way to verify UDP silence. It sends each probe
// datagram once and right after them a small control datagram to the same
// closed port, in up to two rounds. The server spends its ICMP tokens in
// the order the datagrams arrive, and they arrive in the order sent, so a
// round whose control is answered while a probe is not shows that the
// probe never arrived: had it arrived it would have had the token before
// the control. Each probe comes back answered (its first answer), or
// silent with the number of rounds that proved the silence that way (two
// are asked for, so a lost answer does not pass for a lost datagram).
// When the server has no token left (earlier runs used them) the controls
// go unanswered too and the caller waits for the slow way (udpProbe).
// It also returns what the control datagrams got (Sent copies, the last
// answer).
func udpOrdered(ctx context.Context, addr netip.Addr, port int, sizes []int, df []bool, timeout time.Duration, pacer *udpPacer) ([]udpAnswer, []int, udpAnswer) {
	answers := make([]udpAnswer, len(sizes))
	proven := make([]int, len(sizes))
	fds := make([]int, len(sizes))
	for i := range fds {
		fds[i] = -1
	}
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for i := range sizes {
		answers[i] = udpAnswer{Answer: diagnose.AnswerNone}
		fd, err := udpSocket(addr, port, df[i])
		if err != nil {
			answers[i].Err = err
			continue
		}
		fds[i] = fd
	}
	ctlAns := udpAnswer{Answer: diagnose.AnswerNone}
	ctl, err := udpSocket(addr, port, true)
	if err != nil {
		ctlAns.Err = err
		return answers, proven, ctlAns
	}
	defer unix.Close(ctl)
	hdr := packet.IPv4HeaderLen + packet.UDPHeaderLen
	if addr.Is6() {
		hdr = packet.IPv6HeaderLen + packet.UDPHeaderLen
	}
	control := make([]byte, 128-hdr)
	copy(control, "mtuscope control: please ignore")
	open := func(i int) bool {
		return fds[i] >= 0 && answers[i].Answer == diagnose.AnswerNone && answers[i].Err == nil
	}
	for round := 0; round < 2 && ctx.Err() == nil; round++ {
		waiting := 0
		for i, size := range sizes {
			if !open(i) {
				continue
			}
			payload := make([]byte, max(size-hdr, 0))
			copy(payload, "mtuscope probe: please ignore")
			if err := unix.Send(fds[i], payload, 0); err != nil {
				if errors.Is(err, unix.EMSGSIZE) {
					answers[i].Answer, answers[i].LocalTooBig = diagnose.AnswerLocalEMSGSIZE, true
					continue
				}
				answers[i].Err = err
				continue
			}
			answers[i].Sent++
			waiting++
		}
		if waiting == 0 {
			break
		}
		if err := unix.Send(ctl, control, 0); err != nil {
			break
		}
		ctlAns.Sent++
		ctlAns.Answer = diagnose.AnswerNone
		var answeredAt time.Time
		end := time.Now().Add(timeout)
		for time.Now().Before(end) && ctx.Err() == nil {
			step := min(time.Until(end), 10*time.Millisecond)
			pfd := []unix.PollFd{{Fd: int32(ctl), Events: unix.POLLERR}}
			for _, fd := range fds {
				if fd >= 0 {
					pfd = append(pfd, unix.PollFd{Fd: int32(fd), Events: unix.POLLERR})
				}
			}
			if _, err := unix.Poll(pfd, int(max(step.Milliseconds(), 1))); err != nil && !errors.Is(err, unix.EINTR) {
				return answers, proven, ctlAns
			}
			for i, fd := range fds {
				if fd >= 0 && answers[i].Answer == diagnose.AnswerNone {
					readErrQueue(fd, &answers[i])
				}
			}
			if answeredAt.IsZero() && readErrQueue(ctl, &ctlAns) {
				if ctlAns.Answer != diagnose.AnswerPortUnreachable {
					return answers, proven, ctlAns // not a closed port answering: no proof this way
				}
				answeredAt = time.Now()
				pacer.answered(answeredAt)
				end = answeredAt.Add(orderedGrace)
			}
		}
		if answeredAt.IsZero() {
			break // no token for the control either: the slow way decides
		}
		for i := range sizes {
			if answers[i].Answer == diagnose.AnswerPortUnreachable {
				pacer.answered(answeredAt)
			}
			if open(i) {
				proven[i]++
			}
		}
	}
	return answers, proven, ctlAns
}

// udpSocket opens a UDP socket connected to addr:port with Don't Fragment
// (ignoring the cached path MTU) or allowed to fragment, with its ICMP
// errors on the error queue.
func udpSocket(addr netip.Addr, port int, df bool) (int, error) {
	fam, lvl, recverr := unix.AF_INET, unix.IPPROTO_IP, unix.IP_RECVERR
	if addr.Is6() {
		fam, lvl, recverr = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_RECVERR
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	if err := sockopt.SetDontFragmentFD(fd, addr.Is6(), df); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set PMTU discovery mode: %w", err)
	}
	if err := unix.SetsockoptInt(fd, lvl, recverr, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set RECVERR: %w", err)
	}
	if err := unix.Connect(fd, sockaddr(addr, port)); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
