package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet/middlebox"
)

// Middlebox is a content-inspecting device (cmd/mtuscope-middlebox) running
// on a client network's r1: the TCP packets the client side forwards go
// through an NFQUEUE queue to it, both families. Stop takes it out of the
// path; with --queue-bypass the path is then clean again.
type Middlebox struct {
	Host *Host
	Kind middlebox.Kind
	Proc *Proc
}

// StartMiddlebox puts a device of the given kind on R1[network] and waits
// until it is in the path. It is stopped when the net closes.
func (n *Net) StartMiddlebox(t testing.TB, network int, kind middlebox.Kind) *Middlebox {
	t.Helper()
	RequireTools(t, "iptables", "ip6tables")
	if network < 0 || network >= len(n.R1) {
		t.Fatalf("testnet: StartMiddlebox(network %d): no such network", network)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mb, err := n.startMiddlebox(ctx, n.R1[network], kind)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	return mb
}

func (n *Net) startMiddlebox(ctx context.Context, r1 *Host, kind middlebox.Kind) (*Middlebox, error) {
	if _, err := middlebox.ParseKind(string(kind)); err != nil {
		return nil, err
	}
	bin, err := middleboxBinary()
	if err != nil {
		return nil, err
	}
	p, err := r1.Start(bin, "-device", string(kind), "-iface", "lan")
	if err != nil {
		return nil, err
	}
	mb := &Middlebox{Host: r1, Kind: kind, Proc: p}
	for !mb.has("ready") {
		select {
		case <-p.Done():
			return nil, fmt.Errorf("middlebox %s on %s exited: %v: %s", kind, r1.Name, p.Wait(), p.Stderr)
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("middlebox %s on %s not ready: %w: %s", kind, r1.Name, ctx.Err(), p.Stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return mb, nil
}

// Events returns what the device has reported so far: "ready", a "hello"
// for each ClientHello it read (with its action: accept, drop or reset),
// a "packet" for each other packet it dropped, and "stopped" with counts.
func (m *Middlebox) Events() []middlebox.Event {
	var out []middlebox.Event
	sc := bufio.NewScanner(strings.NewReader(m.Proc.Stdout.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e middlebox.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event != "" {
			out = append(out, e)
		}
	}
	return out
}

// Hellos returns the "hello" events whose action is action ("" for all).
func (m *Middlebox) Hellos(action string) []middlebox.Event {
	var out []middlebox.Event
	for _, e := range m.Events() {
		if e.Event == "hello" && (action == "" || e.Action == action) {
			out = append(out, e)
		}
	}
	return out
}

// Stopped returns the distinct connections (client address and port)
// of which the device dropped or reset a packet, in order of first sight.
func (m *Middlebox) Stopped() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range m.Events() {
		if (e.Action == "drop" || e.Action == "reset") && !seen[e.Client] {
			seen[e.Client] = true
			out = append(out, e.Client)
		}
	}
	return out
}

func (m *Middlebox) has(event string) bool {
	for _, e := range m.Events() {
		if e.Event == event {
			return true
		}
	}
	return false
}

// Stop takes the device out of the path: SIGTERM, upon which it deletes
// its rules and unbinds its queue, reports "stopped" and exits 0. It
// returns an error if the device did not stop cleanly within 30 s.
func (m *Middlebox) Stop() error {
	m.Proc.Signal(syscall.SIGTERM)
	select {
	case <-m.Proc.Done():
	case <-time.After(30 * time.Second):
		m.Proc.Stop()
		return fmt.Errorf("testnet: middlebox on %s did not stop within 30 s", m.Host.Name)
	}
	if err := m.Proc.Wait(); err != nil {
		return fmt.Errorf("testnet: middlebox on %s: %w: %s", m.Host.Name, err, m.Proc.Stderr)
	}
	if !m.has("stopped") {
		return fmt.Errorf("testnet: middlebox on %s exited without its stopped event: %s", m.Host.Name, m.Proc.Stderr)
	}
	return nil
}

var (
	mbOnce sync.Once
	mbPath string
	mbErr  error
)

// middleboxBinary returns the device program, built from this checkout
// once per process; $MTUSCOPE_MIDDLEBOX_BIN, when set, names a prebuilt one.
func middleboxBinary() (string, error) {
	mbOnce.Do(func() {
		if p := os.Getenv("MTUSCOPE_MIDDLEBOX_BIN"); p != "" {
			mbPath, mbErr = filepath.Abs(p)
			return
		}
		if mbErr = processStart(); mbErr != nil {
			return
		}
		if mbErr = os.MkdirAll(binDir(), 0o755); mbErr != nil {
			return
		}
		mbPath = filepath.Join(binDir(), "mtuscope-middlebox")
		out, err := exec.Command("go", "build", "-o", mbPath, "github.com/mtuscope/mtuscope/cmd/mtuscope-middlebox").CombinedOutput()
		if err != nil {
			mbErr = fmt.Errorf("go build mtuscope-middlebox: %v: %s", err, out)
		}
	})
	return mbPath, mbErr
}

// startDevices starts the middlebox of every network whose Faults name one.
func (n *Net) startDevices(ctx context.Context) error {
	n.Middleboxes = make([]*Middlebox, len(n.R1))
	for i, f := range n.Scenario.Networks {
		if f.Device == "" {
			continue
		}
		for _, tool := range []string{"iptables", "ip6tables"} {
			if _, err := exec.LookPath(tool); err != nil {
				return fmt.Errorf("testnet: %s not found (install iptables)", tool)
			}
		}
		mb, err := n.startMiddlebox(ctx, n.R1[i], f.Device)
		if err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
		n.Middleboxes[i] = mb
	}
	return nil
}
