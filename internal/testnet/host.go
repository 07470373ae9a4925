package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Host is one network namespace of a Net: a client, a router or the server.
type Host struct {
	Name string     // the namespace's name, for "ip netns exec"
	V4   netip.Addr // its address facing the server side of the path
	V6   netip.Addr
	net  *Net
}

// Addr returns the host's address of the given family, 4 or 6.
func (h *Host) Addr(family int) netip.Addr {
	if family == 6 {
		return h.V6
	}
	return h.V4
}

func (h *Host) String() string { return h.Name }

func (h *Host) isRouter() bool {
	return strings.Contains(h.Name, "-r1n") || strings.Contains(h.Name, "-r2n") || strings.HasSuffix(h.Name, "-nat")
}

// sysctls sets the namespace's kernel knobs; it runs inside the namespace.
func (h *Host) sysctls() error {
	set := map[string]string{
		"net/ipv6/conf/all/accept_dad":     "0",
		"net/ipv6/conf/default/accept_dad": "0",
		"net/ipv6/conf/all/accept_ra":      "0",
		"net/ipv6/conf/default/accept_ra":  "0",
	}
	if h.isRouter() {
		set["net/ipv4/ip_forward"] = "1"
		set["net/ipv6/conf/all/forwarding"] = "1"
		set["net/ipv6/conf/default/forwarding"] = "1"
	}
	for k, v := range set {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0); err != nil {
			return fmt.Errorf("testnet: %s: sysctl %s: %w", h.Name, k, err)
		}
	}
	return nil
}

// Do runs fn on an OS thread that has entered the host's namespace, and
// returns its error. Sockets fn creates stay in the namespace for their whole
// life, whichever goroutine uses them later; but goroutines started by fn run
// outside it, so a client that dials from its own goroutines must be given
// Dialer instead. The thread returns to its own namespace afterwards.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("testnet: panic in namespace %s: %v\n%s", h.Name, r, debug.Stack())
			}
		}()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("testnet: open own namespace: %w", err)
			return
		}
		defer orig.Close()
		f, err := os.Open(filepath.Join("/run/netns", h.Name))
		if err != nil {
			errc <- fmt.Errorf("testnet: open namespace: %w", err)
			return
		}
		err = setns(f)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("testnet: enter namespace %s: %w", h.Name, err)
			return
		}
		defer func() {
			// Only a thread back in its own namespace may run other
			// goroutines; otherwise it stays locked and ends with this one.
			if setns(orig) == nil {
				runtime.UnlockOSThread()
			}
		}()
		errc <- fn()
	}()
	return <-errc
}

// DialContext dials address (an IP literal and port) with a socket made
// inside the host's namespace.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return h.Dialer(&net.Dialer{})(ctx, network, address)
}

// Dialer returns a dial function, for tls.Dialer, http.Transport and the
// like, whose sockets are made inside the host's namespace with d's settings
// (Control hooks, timeouts). Addresses must be IP literals: a name lookup
// could dial from other goroutines, outside the namespace.
func (h *Host) Dialer(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return nil, fmt.Errorf("testnet: dial %q: want an IP literal in a namespace", address)
		}
		var c net.Conn
		err = h.Do(func() error {
			var err error
			c, err = d.DialContext(ctx, network, address)
			return err
		})
		return c, err
	}
}

// Listen opens a listener inside the host's namespace. Connections it
// accepts belong to the namespace too.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket inside the host's namespace.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// Command returns a command that runs name inside the namespace. It runs in
// a process group of its own, killed whole when ctx ends.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Result is the outcome of a command run to completion.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int  // -1 if it did not exit normally
	TimedOut       bool // the context ended before the command did
	Duration       time.Duration
	Err            error // nil when the command exited 0
}

// String summarises the result for test failure messages.
func (r Result) String() string {
	return fmt.Sprintf("exit %d (timed out %v) after %v, err %v\nstdout: %s\nstderr: %s",
		r.ExitCode, r.TimedOut, r.Duration.Round(time.Millisecond), r.Err,
		bytes.TrimSpace(r.Stdout), bytes.TrimSpace(r.Stderr))
}

// Run runs name inside the namespace until it exits or ctx ends, with its
// output captured.
func (h *Host) Run(ctx context.Context, name string, args ...string) Result {
	cmd := h.Command(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: out.Bytes(), Stderr: errb.Bytes(), Duration: time.Since(start), Err: err, ExitCode: -1}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	r.TimedOut = ctx.Err() != nil
	return r
}

// Proc is a process running in the background in a namespace.
type Proc struct {
	Cmd    *exec.Cmd
	Stdout *syncBuffer
	Stderr *syncBuffer

	done     chan struct{}
	stopOnce sync.Once
	err      error
}

// Start starts name in the background inside the namespace. It is stopped by
// Stop or, at the latest, when the Net closes.
func (h *Host) Start(name string, args ...string) (*Proc, error) {
	cmd := h.Command(context.Background(), name, args...)
	p := &Proc{Cmd: cmd, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	if h.net.closed {
		return nil, errors.New("testnet: net is closed")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testnet: start %s in %s: %w", name, h.Name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	h.net.procs = append(h.net.procs, p)
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process's whole group.
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Wait waits for the process to exit and returns its error.
func (p *Proc) Wait() error { <-p.done; return p.err }

// Stop ends the process group: SIGTERM, then SIGKILL after two seconds.
func (p *Proc) Stop() error {
	p.stopOnce.Do(func() {
		p.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
			p.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	return p.err
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
