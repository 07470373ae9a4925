//go:build unix

package testnet

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Heavy holds weight of the suite's slots for CPU-heavy work (a headless
// Chromium, a probe run of dozens of RSA handshakes) until the test ends,
// waiting for them first. The slots are shared by every test process of
// the suite (go test runs packages side by side), through lock files that
// the kernel releases when a process dies: with more such work at once
// than the cores can serve, every handshake of it misses its timeout and
// the tools rightly say "too slow to measure". The capacity is
// $MTUSCOPE_TEST_SLOTS, else twice the cores. A test calls Heavy once,
// with all it needs, before it starts the work: slots taken one at a time
// could deadlock two tests each holding part of what it needs. A later
// call by a test that holds slots returns at once (so helpers may call
// it); subtests take their own, so a parent that holds slots must not
// wait for its subtests.
func Heavy(t testing.TB, weight int) {
	t.Helper()
	holdersMu.Lock()
	if holders[t] {
		holdersMu.Unlock()
		return
	}
	holders[t] = true
	holdersMu.Unlock()
	capacity := 2 * runtime.NumCPU()
	if v, err := strconv.Atoi(os.Getenv("MTUSCOPE_TEST_SLOTS")); err == nil && v > 0 {
		capacity = v
	}
	weight = max(1, min(weight, capacity))
	dir := filepath.Join(os.TempDir(), "mtuscope-test-slots")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("testnet: slots: %v", err)
	}
	// One test takes slots at a time, holding the gate until it has all it
	// needs: a test that needs several is not starved by single ones.
	gate, err := lockFile(filepath.Join(dir, "gate"), true)
	if err != nil {
		t.Fatalf("testnet: slots: %v", err)
	}
	defer gate.Close()
	deadline := time.Now().Add(10 * time.Minute)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok {
			deadline = td.Add(-time.Minute)
		}
	}
	var held []*os.File
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		for i := 0; i < capacity && len(held) < weight; i++ {
			if f, err := lockFile(filepath.Join(dir, fmt.Sprintf("slot-%d", i)), false); err == nil {
				held = append(held, f)
			}
		}
		if len(held) == weight {
			break
		}
		if time.Now().After(deadline) {
			for _, f := range held {
				f.Close()
			}
			t.Fatalf("testnet: waited %v for %d of %d heavy-work slots", time.Since(start).Round(time.Second), weight, capacity)
		}
	}
	t.Cleanup(func() {
		for _, f := range held {
			f.Close()
		}
		holdersMu.Lock()
		delete(holders, t)
		holdersMu.Unlock()
	})
}

// holders are the tests of this process that hold slots.
var (
	holdersMu sync.Mutex
	holders   = map[testing.TB]bool{}
)

// lockFile opens path and takes an exclusive lock on it, waiting for it
// when wait is set; closing the file releases the lock.
func lockFile(path string, wait bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
