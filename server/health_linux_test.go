package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHealthReflectsStore: /healthz fails when the disk holding the
// reports is full (a small tmpfs, as root). A read-only file system cannot
// be made here (remounting one with the database open for writing is
// refused); the write transaction of the check is what fails there.
func TestHealthReflectsStore(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=24m"); err != nil {
		t.Skipf("tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) }) // after the server's shutdown
	s := loopback(t, func(c *Config) { c.DataDir = dir })
	c := client()
	health := func() (int, string) { return do(t, c, "GET", s.url("admin", "/healthz"), "", nil) }
	writable := func() string {
		_, body := do(t, c, "GET", s.url("admin", "/metrics"), "", nil)
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, "mtuscope_store_writable "); ok {
				return v
			}
		}
		t.Fatalf("no mtuscope_store_writable in /metrics")
		return ""
	}
	if w := writable(); w != "1" {
		t.Errorf("healthy store: mtuscope_store_writable %s, want 1", w)
	}
	if code, body := health(); code != 200 {
		t.Fatalf("healthy store: %d %s", code, body)
	}
	// Fill the disk, leaving less than the server needs.
	fill := filepath.Join(dir, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 20<<20))
	f.Close()
	if code, body := health(); code != 503 {
		t.Errorf("full disk: %d %s, want 503", code, body)
	} else {
		t.Logf("full disk: %s", body)
	}
	if w := writable(); w != "0" {
		t.Errorf("full disk: mtuscope_store_writable %s, want 0", w)
	}
	os.Remove(fill)
	if code, body := health(); code != 200 {
		t.Errorf("after freeing the disk: %d %s", code, body)
	}
	// Fill it to the last byte: now the write itself fails too.
	f, _ = os.Create(fill)
	for {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	f.Close()
	if err := s.store.CheckWrite(t.Context(), 0); err == nil {
		t.Log("the write check still found room in the database's own pages")
	} else {
		t.Logf("write check on a full disk: %v", err)
	}
	if code, _ := health(); code != 503 {
		t.Errorf("disk full to the last byte: %d, want 503", code)
	}
}
