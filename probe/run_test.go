//go:build linux

package probe

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// loopbackTarget is a real TLS server on loopback (httptest's certificate)
// that answers every request with a few kilobytes.
func loopbackTarget(t *testing.T) Target {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(strings.Repeat("x", 20000)))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the probe drops many handshakes on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tg, err := ParseTarget(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestRunHooks runs a whole probe against a loopback TLS server with the
// clock a year behind the wall clock and every connection through the
// dial hook: the run's bound must follow the hook's clock (a deadline
// taken from the wall clock would have passed a year ago), and every
// connection the report counts must have gone through the hook.
func TestRunHooks(t *testing.T) {
	tg := loopbackTarget(t)
	skew := -365 * 24 * time.Hour
	var mu sync.Mutex
	var dialed []string
	cfg := Config{Target: tg, Timeout: 20 * time.Second, SkipICMP: true,
		TimeNow: func() time.Time { return time.Now().Add(skew) },
		Dial: func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, address)
			mu.Unlock()
			return d.DialContext(ctx, network, address)
		},
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Evidence.Incomplete || !rep.Evidence.Connected {
		t.Fatalf("run incomplete or not connected: %+v", rep.Evidence)
	}
	if rep.Elapsed <= 0 || rep.Elapsed > 20*time.Second {
		t.Errorf("Elapsed %v, want the run's own duration", rep.Elapsed)
	}
	if d := diagnose.Diagnose(rep.Evidence); d.Verdict != diagnose.VerdictOK {
		t.Errorf("verdict %s on loopback, want ok: %+v", d.Verdict, d.Findings)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) == 0 || len(dialed) != rep.Connections {
		t.Errorf("%d connections through the hook, the report counts %d", len(dialed), rep.Connections)
	}
	for _, a := range dialed {
		if a != rep.Address {
			t.Errorf("dialed %s, the run's address is %s", a, rep.Address)
		}
	}
}

// TestRunDialFails sends every connection into a hook that refuses it: the
// run reports the connect failure as evidence, with the hook's error.
func TestRunDialFails(t *testing.T) {
	tg := loopbackTarget(t)
	refused := errors.New("refused by the test's dial hook")
	cfg := Config{Target: tg, Timeout: 5 * time.Second, SkipICMP: true,
		Dial: func(context.Context, *net.Dialer, string, string) (net.Conn, error) { return nil, refused },
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Evidence.Connected || !strings.Contains(rep.Evidence.ConnectError, refused.Error()) {
		t.Errorf("connect error %q, connected %v", rep.Evidence.ConnectError, rep.Evidence.Connected)
	}
	if d := diagnose.Diagnose(rep.Evidence); d.Verdict != diagnose.VerdictTCPUnreachable {
		t.Errorf("verdict %s, want tcp_unreachable", d.Verdict)
	}
}

// busyListener's connections read nothing before until: a server too busy
// to answer anyone at first.
type busyListener struct {
	net.Listener
	until time.Time
}

func (l busyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return busyConn{c, l.until}, err
}

type busyConn struct {
	net.Conn
	until time.Time
}

func (c busyConn) Read(b []byte) (int, error) {
	time.Sleep(time.Until(c.until))
	return c.Conn.Read(b)
}

// TestBusyAtFirst: a server too busy to answer anything for its first
// 1.5 s is no server that fails TLS. The baseline (800 ms) gets nothing
// back, not even to the smallest packets; it runs again with twice the
// wait, the server answers, and the run ends ok. The silent attempt is
// kept, marked retried, out of the evidence.
func TestBusyAtFirst(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(strings.Repeat("x", 20000)))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Listener = busyListener{srv.Listener, time.Now().Add(1500 * time.Millisecond)}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tg, err := ParseTarget(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{Target: tg, Timeout: 30 * time.Second, SkipICMP: true})
	if err != nil {
		t.Fatal(err)
	}
	d := diagnose.Diagnose(rep.Evidence)
	retried := 0
	for _, h := range rep.Handshakes {
		if h.Kind == KindBaseline && h.Retried {
			retried++
		}
	}
	if d.Verdict != diagnose.VerdictOK || retried == 0 {
		for _, h := range rep.Handshakes {
			if h.Kind == KindBaseline {
				t.Logf("baseline: %s retried %v, %s", h.Outcome, h.Retried, h.Detail)
			}
		}
		t.Errorf("verdict %s (%+v), %d baselines retried; want ok after a retried baseline", d.Verdict, d.Findings, retried)
	}
}
