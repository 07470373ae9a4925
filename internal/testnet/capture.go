package testnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Capture is tcpdump writing one interface's packets to a pcap file.
type Capture struct {
	File string
	proc *Proc
}

// Capture starts tcpdump on iface inside the namespace, writing to file,
// with an optional BPF filter, and returns once tcpdump reports it is
// listening. Packets are written as they come (--immediate-mode), so a
// short capture is complete once Stop returns.
func (h *Host) Capture(iface, file string, filter ...string) (*Capture, error) {
	args := []string{"-i", iface, "-w", file, "-n", "-U", "--immediate-mode", "-Z", "root"}
	args = append(args, filter...)
	p, err := h.Start("tcpdump", args...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !strings.Contains(p.Stderr.String(), "listening on") {
		select {
		case <-p.Done():
			return nil, fmt.Errorf("testnet: tcpdump on %s/%s exited: %v: %s", h.Name, iface, p.Wait(), p.Stderr)
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("testnet: tcpdump on %s/%s did not start: %s", h.Name, iface, p.Stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return &Capture{File: file, proc: p}, nil
}

// Stop ends the capture with SIGINT, so tcpdump flushes and closes the file,
// and returns tcpdump's summary ("N packets captured ...").
func (c *Capture) Stop() (string, error) {
	c.proc.Signal(syscall.SIGINT)
	select {
	case <-c.proc.Done():
	case <-time.After(5 * time.Second):
		c.proc.Stop()
		return c.proc.Stderr.String(), fmt.Errorf("testnet: tcpdump did not stop on SIGINT")
	}
	return c.proc.Stderr.String(), nil
}

// StopAfter waits until tcpdump has written at least n packets to its file
// (for at most a minute), then stops it as Stop does. SIGINT ends tcpdump
// without draining its kernel ring, so on a busy machine packets the
// kernel already captured can be lost if tcpdump has not been scheduled
// to read them yet; a caller that knows how many packets went by (it
// injected them, or another capture saw them) waits for them first. If
// they never come, the capture is stopped anyway and the file holds what
// tcpdump wrote: the caller's comparison then shows the difference.
func (c *Capture) StopAfter(n int) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if got, err := countPcapRecords(c.File); err == nil && got >= n {
			break
		}
		select {
		case <-c.proc.Done():
			return c.proc.Stderr.String(), fmt.Errorf("testnet: tcpdump exited before writing %d packets: %s", n, c.proc.Stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c.Stop()
}

// countPcapRecords counts the whole records of a classic pcap file that
// tcpdump is still writing (with -U, record by record).
func countPcapRecords(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	if len(b) < 24 {
		return 0, nil
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(b) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		order = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		order = binary.BigEndian
	default:
		return 0, fmt.Errorf("testnet: %s is not a pcap file", file)
	}
	n := 0
	for off := 24; off+16 <= len(b); {
		off += 16 + int(order.Uint32(b[off+8:]))
		if off > len(b) {
			break // a record tcpdump is still writing
		}
		n++
	}
	return n, nil
}
