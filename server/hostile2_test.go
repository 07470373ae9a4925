package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
)

// heapMB is the live heap after a collection, in MB.
func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// bigHelloPrefix is 64 KB of a ClientHello that claims 65,000 bytes: records of
// handshake type, the message header first.
func bigHelloPrefix(records, size, claim int) []byte {
	var out []byte
	for i := 0; i < records; i++ {
		body := make([]byte, size)
		if i == 0 {
			body[0], body[1], body[2], body[3] = 1, byte(claim>>16), byte(claim>>8), byte(claim) // more than is sent
		}
		hdr := []byte{22, 3, 1, 0, 0}
		binary.BigEndian.PutUint16(hdr[3:], uint16(len(body)))
		out = append(out, hdr...)
		out = append(out, body...)
	}
	return out
}

// TestHalfHelloFloodMemory: connections that each send 64 KB of an
// unfinished ClientHello and close leave nothing behind; held open, they
// cost at most the sniffers' budget.
func TestHalfHelloFloodMemory(t *testing.T) {
	s := loopback(t, nil)
	flood := func(prefix []byte, n int, hold bool) []net.Conn {
		var conns []net.Conn
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 50)
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c, err := net.Dial("tcp", s.Addrs["https"])
				if err != nil {
					t.Error(err)
					return
				}
				c.Write(prefix)
				if hold {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
					return
				}
				c.Close()
			}()
		}
		wg.Wait()
		return conns
	}
	// The server reads each flood connection until it sees the close (the
	// check's own keep-alive connections, handshake done, stay open).
	waitClosed := func() {
		for try := 0; try < 300; try++ {
			open := 0
			s.reg.mu.Lock()
			for _, l := range s.reg.byIP {
				for _, rec := range l {
					rec.mu.Lock()
					if !rec.closed && !rec.handshakeDone {
						open++
					}
					rec.mu.Unlock()
				}
			}
			s.reg.mu.Unlock()
			if open == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		open, kinds := 0, map[string]int{}
		s.reg.mu.Lock()
		for _, l := range s.reg.byIP {
			for _, rec := range l {
				rec.mu.Lock()
				if !rec.closed && !rec.handshakeDone {
					open++
					kinds[fmt.Sprintf("%s got %d done %v", rec.Kind, rec.hello.Got(), rec.hello.Done)]++
				}
				rec.mu.Unlock()
			}
		}
		s.reg.mu.Unlock()
		t.Fatalf("the server did not close %d of the flood's connections: %v", open, kinds)
	}
	for _, tc := range []struct {
		name   string
		prefix []byte
	}{
		{"64 KB of a hello claiming 65,000 bytes", bigHelloPrefix(4, 16000, 65000)},
		{"16,000 bytes of a hello claiming 16 KiB (the sniffer keeps it)", bigHelloPrefix(1, 16000, maxHelloCapture-4)},
	} {
		before := heapMB()
		flood(tc.prefix, 1000, false)
		waitClosed()
		closed := heapMB() - before
		t.Logf("1000 connections, %s, closed: heap grew %.1f MB", tc.name, closed)
		if closed > 16 {
			t.Errorf("closed connections left %.1f MB behind, want under 16", closed)
		}
		before = heapMB()
		held := flood(tc.prefix, 1000, true)
		time.Sleep(time.Second) // let the server read what was sent
		open := heapMB() - before
		sniffBudget.Lock()
		used, limit := sniffBudget.used, sniffBudget.max
		sniffBudget.Unlock()
		t.Logf("the same, held open: heap grew %.1f MB (%d accepted per address, sniffers use %.1f of %d MB)",
			open, maxPendingPerAddr, float64(used)/(1<<20), limit>>20)
		if open > 64 {
			t.Errorf("held connections grew the heap by %.1f MB, want under 64", open)
		}
		for _, c := range held {
			c.Close()
		}
		waitClosed()
		stillServes(t, s)
	}
}

// TestBareConnectionsReportSize: 2,000 bare connections to a rung during
// a session's test, and duplicate rung entries, do not bloat the report.
func TestBareConnectionsReportSize(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	code, body := do(t, c, "POST", s.url("https", "/api/v1/sessions"), "application/json", strings.NewReader(`{"rtt_ms":1}`))
	if code != http.StatusCreated {
		t.Fatalf("session: %d %s", code, body)
	}
	var sess api.Session
	decode(t, body, &sess)
	r0 := sess.Rungs[0]
	for i := 0; i < 2000; i++ {
		bc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r0.Port))
		if err != nil {
			t.Fatal(err)
		}
		bc.Close()
	}
	rungs := []api.BrowserRung{}
	for _, r := range sess.Rungs {
		rungs = append(rungs, api.BrowserRung{MSS: r.MSS, Family: 4, Hello: api.StepFail})
	}
	dup, _ := jsonBody(api.PageResult{Rungs: append(rungs, rungs[0]), RTTms: 1})
	if code, _ := do(t, c, "POST", s.url("https", "/api/v1/sessions/"+sess.ID+"/result"), "application/json", dup); code != http.StatusBadRequest {
		t.Errorf("duplicate rung entries: %d, want 400", code)
	}
	b, _ := jsonBody(api.PageResult{Rungs: rungs, RTTms: 1})
	code, body = do(t, c, "POST", s.url("https", "/api/v1/sessions/"+sess.ID+"/result"), "application/json", b)
	if code != http.StatusCreated {
		t.Fatalf("result: %d %s", code, body)
	}
	var out struct{ ID string }
	decode(t, body, &out)
	code, js := do(t, c, "GET", s.url("https", "/r/"+out.ID+".json"), "", nil)
	t.Logf("report after 2000 bare connections to one rung: %d bytes of JSON", len(js))
	if code != 200 || len(js) > 256<<10 {
		t.Errorf("report: %d, %d bytes, want under 256 KiB", code, len(js))
	}
	var rep Report
	decode(t, js, &rep)
	if p := rep.Primary(); p == nil || p.Rungs[0].ServerMore < 1000 || p.Rungs[0].Uncertain == "" {
		t.Errorf("rung 0 should count the extra connections and say it is uncertain: %+v", p.Rungs[0])
	}
}

// TestHeldProbeConnections: 4,096 connections held open to the rung
// probes from one address do not switch the downstream test off for
// anyone else (that address gets its share, 256).
func TestHeldProbeConnections(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 4096; i++ {
		r := s.rungs[i%len(s.rungs)]
		c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.DownPort))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, c)
	}
	time.Sleep(500 * time.Millisecond) // the server accepts and refuses
	s.pending.mu.Lock()
	n := s.pending.by[netip.MustParseAddr("127.0.0.2")]
	s.pending.mu.Unlock()
	t.Logf("4096 held probe connections from one address: %d kept by the server", n)
	if n > maxPendingPerAddr {
		t.Errorf("%d held, want at most %d", n, maxPendingPerAddr)
	}
	code, out := runPage(t, s, client())
	if code != http.StatusCreated || out["verdict"] != "ok" {
		t.Fatalf("a page run during the flood: %d %v", code, out)
	}
}

// TestBusyIsNotAResult: a full session table answers 503 with Retry-After,
// which the page shows as "the server is busy, retrying".
func TestBusyIsNotAResult(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	s.sessions.mu.Lock()
	s.sessions.max = 1
	s.sessions.mu.Unlock()
	c := client()
	if code, body := do(t, c, "POST", s.url("https", "/api/v1/sessions"), "application/json", strings.NewReader(`{}`)); code != http.StatusCreated {
		t.Fatalf("first session: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", s.url("https", "/api/v1/sessions"), strings.NewReader(`{}`))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("full table: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	_, js := do(t, c, "GET", s.url("https", "/static/app.js"), "", nil)
	if !strings.Contains(js, "The server is busy, retrying") || !strings.Contains(js, "r.status === 503") {
		t.Error("the page does not treat 503 as busy")
	}
}
