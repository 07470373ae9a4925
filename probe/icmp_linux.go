//go:build linux

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/packet"
	"github.com/mtuscope/mtuscope/sockopt"
	"golang.org/x/sys/unix"
)

// echoer sends ICMP echo requests of chosen sizes over a raw socket (root or
// CAP_NET_RAW), with Don't Fragment or allowed to fragment.
type echoer struct {
	fd   int
	addr netip.Addr
	id   uint16
	seq  uint16
	df   bool
}

// errNoPrivilege says raw sockets are not allowed to this process.
var errNoPrivilege = errors.New("ICMP echo needs root or CAP_NET_RAW")

func newEchoer(addr netip.Addr, df bool) (*echoer, error) {
	fam, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if addr.Is6() {
		fam, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, errNoPrivilege
		}
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	if err := sockopt.SetDontFragmentFD(fd, addr.Is6(), df); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set PMTU discovery mode: %w", err)
	}
	if err := unix.Connect(fd, sockaddr(addr, 0)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("raw socket connect: %w", err)
	}
	return &echoer{fd: fd, addr: addr, id: uint16(rand.Uint32()), df: df}, nil
}

func (e *echoer) Close() error { return unix.Close(e.fd) }

// round sends one echo request per size (IP packet bytes) and returns the
// sizes whose reply arrived within timeout.
func (e *echoer) round(ctx context.Context, sizes []int, timeout time.Duration) (map[int]bool, int, error) {
	ipHdr, reqType, replyType := packet.IPv4HeaderLen, byte(8), byte(0)
	if e.addr.Is6() {
		ipHdr, reqType, replyType = packet.IPv6HeaderLen, 128, 129
	}
	bySeq := map[uint16]int{}
	sent := 0
	for _, s := range sizes {
		e.seq++
		msg := make([]byte, max(s-ipHdr, packet.ICMPHeaderLen+8))
		msg[0] = reqType
		binary.BigEndian.PutUint16(msg[4:], e.id)
		binary.BigEndian.PutUint16(msg[6:], e.seq)
		copy(msg[8:], "mtuscope")
		if e.addr.Is4() {
			binary.BigEndian.PutUint16(msg[2:], packet.Checksum(packet.Sum(0, msg)))
		}
		if err := unix.Send(e.fd, msg, 0); err != nil && !errors.Is(err, unix.EMSGSIZE) {
			return nil, sent, fmt.Errorf("send echo: %w", err)
		}
		sent++
		bySeq[e.seq] = s
	}
	got := map[int]bool{}
	buf := make([]byte, 65536)
	var reply packet.Packet
	end := time.Now().Add(timeout)
	unique := map[int]bool{}
	for _, s := range sizes {
		unique[s] = true
	}
	// drain reads every reply queued on the socket, without waiting.
	drain := func() {
		for {
			n, _, err := unix.Recvfrom(e.fd, buf, 0)
			if err != nil {
				return
			}
			// A raw IPv4 socket reads the IP header too, a raw ICMPv6
			// socket only the message.
			if e.addr.Is4() {
				err = packet.DecodeIP(buf[:n], &reply)
			} else {
				err = packet.DecodeICMP(packet.ProtoICMPv6, buf[:n], &reply)
			}
			if err != nil || !reply.Transport || reply.ICMP.Type != replyType || reply.ICMP.ID != e.id {
				continue
			}
			if s, ok := bySeq[reply.ICMP.Seq]; ok {
				got[s] = true
			}
		}
	}
	for len(got) < len(unique) && time.Now().Before(end) && ctx.Err() == nil {
		wait := min(time.Until(end), 50*time.Millisecond)
		pfd := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, int(max(wait.Milliseconds(), 1))); err != nil && !errors.Is(err, unix.EINTR) {
			return got, sent, err
		}
		drain()
	}
	// A reply the kernel queued while this process was not running (a busy
	// computer) arrived all the same: it counts.
	drain()
	return got, sent, nil
}
