package middlebox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// nfnetlink_queue, from <linux/netfilter/nfnetlink_queue.h>: the messages
// are the queue subsystem's (3) in the high byte of the netlink type.
const (
	subsysQueue   = 3
	msgPacket     = subsysQueue << 8
	msgVerdict    = subsysQueue<<8 | 1
	msgConfig     = subsysQueue<<8 | 2
	attrPacketHdr = 1 // NFQA_PACKET_HDR
	attrVerdict   = 2 // NFQA_VERDICT_HDR
	attrPayload   = 10
	cfgCmd        = 1 // NFQA_CFG_CMD
	cfgParams     = 2
	cfgMask       = 4
	cfgFlags      = 5
	cmdBind       = 1
	cmdUnbind     = 2
	copyPacket    = 2
	flagFailOpen  = 1 // accept, not drop, when the queue is full
	verdictDrop   = 0 // NF_DROP
	verdictAccept = 1 // NF_ACCEPT
	nlHeaderLen   = 16
	sizeofNfgen   = 4
)

// queue is one NFQUEUE queue bound over a netlink socket.
type queue struct {
	fd  int
	num uint16
	seq uint32
	buf []byte
}

// packetMsg is one queued packet.
type packetMsg struct {
	id      uint32
	payload []byte // aliases the queue's buffer until the next receive
}

// openQueue binds queue num in the calling thread's network namespace, in
// copy-packet mode, failing open when full. Reads time out after poll so
// the caller can notice it should stop.
func openQueue(num uint16, poll time.Duration) (*queue, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("middlebox: netlink socket: %w", err)
	}
	q := &queue{fd: fd, num: num, buf: make([]byte, 1<<17)}
	if err := q.setup(poll); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return q, nil
}

func (q *queue) setup(poll time.Duration) error {
	if err := unix.Bind(q.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("middlebox: bind netlink: %w", err)
	}
	// A big receive buffer, and no ENOBUFS error should it overflow anyway
	// (the kernel then accepts what it could not queue: fail-open).
	_ = unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	_ = unix.SetsockoptInt(q.fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)
	tv := unix.NsecToTimeval(poll.Nanoseconds())
	if err := unix.SetsockoptTimeval(q.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("middlebox: netlink timeout: %w", err)
	}
	var cmd [4]byte
	cmd[0] = cmdBind // the family (bytes 2-3) is unused since Linux 3.8
	if err := q.request(msgConfig, attr(cfgCmd, cmd[:])); err != nil {
		return fmt.Errorf("middlebox: bind queue %d: %w", q.num, err)
	}
	var params [5]byte
	binary.BigEndian.PutUint32(params[0:4], 0xffff) // copy whole packets
	params[4] = copyPacket
	if err := q.request(msgConfig, attr(cfgParams, params[:])); err != nil {
		return fmt.Errorf("middlebox: queue %d copy mode: %w", q.num, err)
	}
	var flag [4]byte
	binary.BigEndian.PutUint32(flag[:], flagFailOpen)
	if err := q.request(msgConfig, attr(cfgMask, flag[:]), attr(cfgFlags, flag[:])); err != nil {
		return fmt.Errorf("middlebox: queue %d fail-open: %w", q.num, err)
	}
	return nil
}

// close unbinds the queue (the kernel then lets packets bypass it, given
// --queue-bypass) and closes the socket.
func (q *queue) close() error {
	var cmd [4]byte
	cmd[0] = cmdUnbind
	err := q.request(msgConfig, attr(cfgCmd, cmd[:]))
	return errors.Join(err, unix.Close(q.fd))
}

// attr encodes one netlink attribute, padded to four bytes.
func attr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// send writes one message to the queue's subsystem with the given flags.
func (q *queue) send(typ, flags uint16, attrs ...[]byte) (uint32, error) {
	q.seq++
	b := make([]byte, nlHeaderLen+sizeofNfgen, 64)
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(b[8:12], q.seq)
	b[16] = unix.AF_UNSPEC
	binary.BigEndian.PutUint16(b[18:20], q.num)
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	return q.seq, unix.Sendto(q.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// request sends a message asking for an acknowledgement and waits for it.
// Packets queued meanwhile are accepted.
func (q *queue) request(typ uint16, attrs ...[]byte) error {
	seq, err := q.send(typ, unix.NLM_F_ACK, attrs...)
	if err != nil {
		return err
	}
	for tries := 0; tries < 100; tries++ {
		n, _, err := unix.Recvfrom(q.fd, q.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("waiting for the kernel's answer: %w", err)
		}
		for _, m := range splitMessages(q.buf[:n]) {
			switch {
			case m.typ == unix.NLMSG_ERROR && m.seq == seq:
				if len(m.data) < 4 {
					return errors.New("short netlink error message")
				}
				if code := int32(binary.NativeEndian.Uint32(m.data[0:4])); code != 0 {
					return unix.Errno(-code)
				}
				return nil
			case m.typ == msgPacket:
				if p, ok := parsePacket(m.data); ok {
					if err := q.verdict(p.id, verdictAccept); err != nil {
						return err
					}
				}
			}
		}
	}
	return errors.New("no answer from the kernel")
}

// receive waits up to the poll interval for queued packets; none and no
// error means the wait timed out.
func (q *queue) receive() ([]packetMsg, error) {
	n, _, err := unix.Recvfrom(q.fd, q.buf, 0)
	if err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
			return nil, nil
		}
		return nil, fmt.Errorf("middlebox: receive from queue %d: %w", q.num, err)
	}
	var out []packetMsg
	for _, m := range splitMessages(q.buf[:n]) {
		if m.typ != msgPacket {
			continue
		}
		if p, ok := parsePacket(m.data); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// verdict tells the kernel what to do with packet id.
func (q *queue) verdict(id, v uint32) error {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[0:4], v)
	binary.BigEndian.PutUint32(hdr[4:8], id)
	if _, err := q.send(msgVerdict, 0, attr(attrVerdict, hdr[:])); err != nil {
		return fmt.Errorf("middlebox: verdict for packet %d: %w", id, err)
	}
	return nil
}

type nlMessage struct {
	typ  uint16
	seq  uint32
	data []byte
}

// splitMessages cuts a netlink datagram into its messages, stopping at the
// first one whose length does not fit.
func splitMessages(b []byte) []nlMessage {
	var out []nlMessage
	for len(b) >= nlHeaderLen {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < nlHeaderLen || l > len(b) {
			break
		}
		out = append(out, nlMessage{
			typ:  binary.NativeEndian.Uint16(b[4:6]),
			seq:  binary.NativeEndian.Uint32(b[8:12]),
			data: b[nlHeaderLen:l],
		})
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out
}

// parsePacket reads a packet message's id and payload (after its nfgenmsg).
func parsePacket(data []byte) (packetMsg, bool) {
	if len(data) < sizeofNfgen {
		return packetMsg{}, false
	}
	var p packetMsg
	var haveID bool
	for b := data[sizeofNfgen:]; len(b) >= 4; {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) & 0x3fff
		if l < 4 || l > len(b) {
			break
		}
		v := b[4:l]
		switch typ {
		case attrPacketHdr:
			if len(v) >= 4 {
				p.id, haveID = binary.BigEndian.Uint32(v[0:4]), true
			}
		case attrPayload:
			p.payload = v
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return p, haveID
}
