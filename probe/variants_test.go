//go:build linux

package probe

import (
	"context"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// device is a middlebox in the dial hook: it holds a connection's first
// bytes until it has the whole ClientHello, then lets it through, resets
// the connection (both ways: the server gets an RST, this host
// ECONNRESET), or drops it (the handshake times out).
type device func(hello *tlswire.ClientHello, records, writes int) (reset, drop bool)

// deviceConn is one connection through a device.
type deviceConn struct {
	*net.TCPConn
	dev device

	mu      sync.Mutex
	held    []byte
	writes  int
	decided bool
	reset   bool
	drop    bool
}

func (c *deviceConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.reset:
		return 0, os.NewSyscallError("write", syscall.ECONNRESET)
	case c.drop:
		return len(b), nil
	case c.decided:
		return c.TCPConn.Write(b)
	}
	c.writes++
	c.held = append(c.held, b...)
	msg, records, ok := helloMessage(c.held)
	if !ok {
		return len(b), nil // wait for the rest of the hello
	}
	ch, err := tlswire.ParseClientHello(msg)
	if err != nil {
		c.decided = true
		return c.TCPConn.Write(c.held)
	}
	c.decided = true
	c.reset, c.drop = c.dev(ch, records, c.writes)
	switch {
	case c.reset:
		// The hello goes no further; this host sees the reset (the
		// socket stays open, so TCP_INFO still tells what was acked).
		return 0, os.NewSyscallError("write", syscall.ECONNRESET)
	case c.drop:
		return len(b), nil
	}
	if _, err := c.TCPConn.Write(c.held); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *deviceConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reset {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	}
	return n, err
}

// helloMessage reassembles the first handshake message from the records
// in b; ok once it is whole.
func helloMessage(b []byte) (msg []byte, records int, ok bool) {
	for len(b) >= tlswire.RecordHeaderLen {
		h, err := tlswire.ParseRecordHeader(b)
		if err != nil || len(b) < tlswire.RecordHeaderLen+h.Length {
			return nil, records, false
		}
		msg = append(msg, b[tlswire.RecordHeaderLen:tlswire.RecordHeaderLen+h.Length]...)
		b = b[tlswire.RecordHeaderLen+h.Length:]
		records++
		if len(msg) >= 4 && len(msg) >= 4+(int(msg[1])<<16|int(msg[2])<<8|int(msg[3])) {
			return msg, records, true
		}
	}
	return nil, records, false
}

// The devices of S13-S16, as the testbed's NFQUEUE programs behave.
var (
	pqReject device = func(ch *tlswire.ClientHello, _, _ int) (bool, bool) {
		return slices.Contains(ch.KeyShareGroups, tlswire.GroupX25519MLKEM768), false
	}
	mldsaReject device = func(ch *tlswire.ClientHello, _, _ int) (bool, bool) {
		return slices.ContainsFunc(ch.SignatureAlgorithms, func(a uint16) bool { return a >= 0x0904 && a <= 0x0906 }), false
	}
	splitDrop  device = func(_ *tlswire.ClientHello, _, writes int) (bool, bool) { return false, writes > 1 }
	windowDrop device = func(ch *tlswire.ClientHello, _, _ int) (bool, bool) {
		return false, ch.Size-4 >= 256 && ch.Size-4 <= 511
	}
	passAll device = func(*tlswire.ClientHello, int, int) (bool, bool) { return false, false }
)

// TestRunVariantsThroughDevices runs whole probes against a loopback TLS
// server through each device in the dial hook: each names its device's
// cause and only it, and the variants' attempts carry what happened.
func TestRunVariantsThroughDevices(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dev   device
		want  diagnose.Verdict
		reset bool // the failing variant was reset by the path
	}{
		{"no device", passAll, diagnose.VerdictOK, false},
		{"post-quantum key share reset", pqReject, diagnose.VerdictPQRejected, true},
		{"ML-DSA reset", mldsaReject, diagnose.VerdictMLDSARejected, true},
		{"split hello dropped", splitDrop, diagnose.VerdictSplitIntolerant, false},
		{"256-511 bytes dropped", windowDrop, diagnose.VerdictLengthRejected, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := loopbackTarget(t)
			cfg := Config{Target: tg, Timeout: 20 * time.Second, SkipICMP: true, ServerName: "example.com",
				Dial: func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
					c, err := d.DialContext(ctx, network, address)
					if err != nil {
						return nil, err
					}
					return &deviceConn{TCPConn: c.(*net.TCPConn), dev: tc.dev}, nil
				},
			}
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			d := diagnose.Diagnose(rep.Evidence)
			causes := []diagnose.Verdict{tc.want}
			if tc.want == diagnose.VerdictOK {
				causes = nil
			}
			if d.Verdict != tc.want || !slices.Equal(d.Causes, causes) {
				for _, f := range d.Findings {
					t.Logf("  %s: %s", f.Code, f.Detail)
				}
				for _, v := range rep.Variants {
					t.Logf("  variant %s #%d: %s %s %s", v.Name, v.Attempt, v.Outcome, v.ResetBy, v.Detail)
				}
				t.Errorf("verdict %s, causes %v; want %s", d.Verdict, d.Causes, tc.want)
			}
			names := map[string]bool{}
			for _, v := range rep.Variants {
				names[v.Name] = true
				if v.Outcome == diagnose.Reset && tc.reset && v.ResetBy != diagnose.ResetByPath {
					t.Errorf("%s reset, by %q: want the path (the device never passed the hello on)", v.Name, v.ResetBy)
				}
				if v.Outcome != diagnose.Completed && tc.want == diagnose.VerdictOK {
					t.Errorf("%s: %s %s", v.Name, v.Outcome, v.Detail)
				}
			}
			if len(names) != 10 {
				t.Errorf("%d variants ran, want 10: %v", len(names), names)
			}
			t.Logf("%s: %s in %v, %d connections", tc.name, d.Verdict, rep.Elapsed, rep.Connections)
		})
	}
}

// TestResetByServer: a server that reads the whole hello and then resets
// the connection acknowledged it first, so the reset is not the path's;
// tcpi_bytes_acked counts the SYN as one byte.
func TestResetByServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const hello = 600
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, hello)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err == nil {
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Write(make([]byte, hello)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 10))
	if !isReset(err) {
		t.Fatalf("read: %v, want a reset", err)
	}
	info, err := readTCPInfo(c)
	if err != nil {
		t.Fatal(err)
	}
	if info.BytesAcked != hello+1 {
		t.Errorf("bytes acked %d, want %d (the hello and the SYN)", info.BytesAcked, hello+1)
	}
	if by := resetBy(info, hello, time.Since(start), 0); by != diagnose.ResetByServer {
		t.Errorf("reset by %q, want server", by)
	}
	if by := resetBy(tcpInfo{BytesAcked: 1}, hello, time.Millisecond, 0); by != diagnose.ResetByPath {
		t.Errorf("a reset before the hello was acknowledged: by %q, want path", by)
	}
	if by := resetBy(tcpInfo{}, hello, time.Millisecond, 40*time.Millisecond); by != diagnose.ResetByPath {
		t.Errorf("a reset 1 ms after the hello on a 40 ms path: by %q, want path", by)
	}
	if by := resetBy(tcpInfo{}, hello, 30*time.Millisecond, 40*time.Millisecond); by != "" {
		t.Errorf("a reset after most of a round trip, nothing known of the acks: by %q, want unknown", by)
	}
}
