package testnet

import (
	"context"
	"fmt"
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
