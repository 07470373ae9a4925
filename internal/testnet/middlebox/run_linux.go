package middlebox

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Run binds the queue, puts the device in the path (iptables and ip6tables
// rules sending the forwarded TCP packets that enter by cfg.Iface to the
// queue, with --queue-bypass), reports a "ready" event, and decides every
// queued packet until ctx ends. Then it takes the rules out, unbinds the
// queue and reports a "stopped" event with its counts. It works in the
// network namespace of the calling process.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	dev, err := New(cfg.Kind, cfg.MaxFlows)
	if err != nil {
		return err
	}
	q, err := openQueue(cfg.Queue, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer q.close()
	s, err := openSender()
	if err != nil {
		return err
	}
	defer s.close()
	if cfg.Iface != "" {
		if err := rules(ctx, "-I", cfg.Iface, cfg.Queue); err != nil {
			rules(context.Background(), "-D", cfg.Iface, cfg.Queue)
			return err
		}
		defer rules(context.Background(), "-D", cfg.Iface, cfg.Queue)
	}
	cfg.Events(Event{Event: "ready", Device: cfg.Kind})
	var st Event
	st.Event, st.Device = "stopped", cfg.Kind
	defer func() { cfg.Events(st) }()
	for ctx.Err() == nil {
		pkts, err := q.receive()
		if err != nil {
			return err
		}
		for _, p := range pkts {
			st.Packets++
			dec := dev.Decide(p.payload)
			// Reported before the verdict: whoever reads the events after
			// a client saw the packet's fate finds it there.
			if dec.Hello != nil || dec.Action != Accept {
				cfg.Events(eventOf(p.payload, dec))
			}
			v := uint32(verdictAccept)
			if dec.Action != Accept {
				v = verdictDrop
				st.Dropped++
			}
			if dec.Action == Reset {
				st.Resets++
				for _, r := range dec.Resets {
					if err := s.send(r); err != nil {
						cfg.Log.Warn("sending a reset", "err", err)
					}
				}
			}
			if err := q.verdict(p.id, v); err != nil {
				return err
			}
		}
	}
	st.Flows = dev.Flows()
	return nil
}

// eventOf describes a decision for the event stream.
func eventOf(pkt []byte, dec Decision) Event {
	e := Event{Event: "hello", Action: dec.Action.String(), Reason: dec.Reason, Hello: dec.Hello}
	if dec.Hello == nil {
		e.Event = "packet"
	}
	if seg, ok := parseSegment(pkt); ok {
		e.Client, e.Server = seg.Src.String(), seg.Dst.String()
	}
	return e
}

// rules adds (-I) or deletes (-D) the device's queue rules for both
// families. iptables' -w waits for the lock other namespaces' runs hold.
func rules(ctx context.Context, op, iface string, num uint16) error {
	var errs []error
	for _, tool := range []string{"iptables", "ip6tables"} {
		args := []string{"-w", "10", op, "FORWARD", "-i", iface, "-p", "tcp",
			"-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(num)), "--queue-bypass"}
		if out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("middlebox: %s %s: %v: %s", tool, op, err, out))
		}
	}
	return errors.Join(errs...)
}

// sender sends complete IP packets (the resets) from raw sockets.
type sender struct{ fd4, fd6 int }

func openSender() (*sender, error) {
	fd4, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("middlebox: raw IPv4 socket: %w", err)
	}
	// IPPROTO_RAW means the header is included, for IPv6 too (Linux 4.5+).
	fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		unix.Close(fd4)
		return nil, fmt.Errorf("middlebox: raw IPv6 socket: %w", err)
	}
	return &sender{fd4, fd6}, nil
}

func (s *sender) send(pkt []byte) error {
	seg, ok := parseSegment(pkt)
	if !ok {
		return errors.New("middlebox: unreadable packet to send")
	}
	dst := seg.Dst.Addr()
	if dst.Is4() {
		return unix.Sendto(s.fd4, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	}
	return unix.Sendto(s.fd6, pkt, 0, &unix.SockaddrInet6{Addr: dst.As16()})
}

func (s *sender) close() {
	unix.Close(s.fd4)
	unix.Close(s.fd6)
}
