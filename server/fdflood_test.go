//go:build linux

package server

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fdChildLimit is the descriptor limit of the server the flood test runs
// in a child process.
const fdChildLimit = 1024

// TestDescriptorFloodChild is the child of TestDescriptorFlood: a server
// with a descriptor limit of fdChildLimit that prints its addresses and
// serves until its standard input closes.
func TestDescriptorFloodChild(t *testing.T) {
	if os.Getenv("MTUSCOPE_FD_CHILD") != "1" {
		t.Skip("run by TestDescriptorFlood")
	}
	lim := syscall.Rlimit{Cur: fdChildLimit, Max: fdChildLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	s := loopback(t, func(c *Config) { c.Rungs.RefinePorts = 16 })
	s.pending.mu.Lock()
	bound := s.pending.max
	s.pending.mu.Unlock()
	json.NewEncoder(os.Stdout).Encode(map[string]any{"https": s.Addrs["https"], "bound": bound})
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// openFDs counts the descriptors process pid has open.
func openFDs(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// TestDescriptorFlood: bare connections from many addresses, each address
// within its own bound of unfinished connections, do not take the
// server to its descriptor limit: past a global bound derived from the
// limit the oldest unfinished connections are shed, and a new customer's
// page still loads. (Before: 80 addresses of 256 connections reached the
// limit of 20,000 and 2 of 4 page loads by a bystander timed out; here 8
// addresses against a limit of 1,024.)
func TestDescriptorFlood(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDescriptorFloodChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MTUSCOPE_FD_CHILD=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	var info struct {
		HTTPS string
		Bound int
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || json.Unmarshal([]byte(line), &info) != nil {
		t.Fatalf("child: %q, %v", line, err)
	}
	pid := cmd.Process.Pid
	// The flood: 8 addresses of 127.0.0.0/8, maxPendingPerAddr bare
	// connections each, re-opened as the server closes them, until the
	// bystander is done.
	const addrs = 8
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak, dialed, shed := 0, 0, 0
	for a := 0; a < addrs; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(10+a))}, Timeout: 5 * time.Second}
			closed := make(chan struct{}, maxPendingPerAddr)
			open := 0
			for round := 0; round < 50; round++ {
				for ; open < maxPendingPerAddr; open++ {
					c, err := d.Dial("tcp", info.HTTPS)
					if err != nil {
						break
					}
					mu.Lock()
					dialed++
					mu.Unlock()
					go func() {
						c.Read(make([]byte, 1)) // returns when the server closes it
						c.Close()
						closed <- struct{}{}
					}()
				}
				select {
				case <-stop:
					return
				case <-closed:
					open--
					mu.Lock()
					shed++
					mu.Unlock()
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	}
	// Let the flood reach its height, watching the server's descriptors.
	watch := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			mu.Lock()
			peak = max(peak, openFDs(pid))
			mu.Unlock()
		}
	}
	watch(3 * time.Second)
	// The bystander: four page loads from another address, each on a new
	// connection.
	loaded := 0
	var took []string
	for i := 0; i < 4; i++ {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, 1)}}).DialContext}
		c := &http.Client{Timeout: 20 * time.Second, Transport: tr}
		start := time.Now()
		resp, err := c.Get("https://" + info.HTTPS + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				loaded++
			}
		}
		took = append(took, time.Since(start).Round(time.Millisecond).String())
		tr.CloseIdleConnections()
		watch(200 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d addresses x %d bare connections (%d dialed, %d closed by the server): the server's descriptors peaked at %d of %d "+
		"(unfinished connections bounded at %d); a bystander loaded the page %d of 4 times (%s)",
		addrs, maxPendingPerAddr, dialed, shed, peak, fdChildLimit, info.Bound, loaded, strings.Join(took, ", "))
	if peak >= fdChildLimit-16 {
		t.Errorf("the server's descriptors reached %d of its limit %d", peak, fdChildLimit)
	}
	if loaded != 4 {
		t.Errorf("the page loaded %d of 4 times during the flood", loaded)
	}
}

// TestPendingShedsOldest: past the global bound the oldest unfinished
// connection is closed, whatever its address; released ones are not
// counted twice.
func TestPendingShedsOldest(t *testing.T) {
	var p pendingConns
	p.setMax(3)
	var closed []int
	var slots []*pendingConn
	for i := 0; i < 5; i++ {
		pc, _ := p.acquire(netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i+1)))
		p.setClose(pc, func() { closed = append(closed, i) })
		slots = append(slots, pc)
	}
	if fmt.Sprint(closed) != "[0 1]" {
		t.Errorf("shed %v, want the two oldest [0 1]", closed)
	}
	p.release(slots[0]) // already shed: no effect
	p.release(slots[2])
	if _, all := p.count(netip.MustParseAddr("192.0.2.4")); all != 2 {
		t.Errorf("%d counted, want 2", all)
	}
	if pc, shed := p.acquire(netip.MustParseAddr("192.0.2.9")); pc == nil || shed != 0 {
		t.Errorf("below the bound: %v, shed %d", pc, shed)
	}
}
