package asn_test

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/internal/asntest"
)

func TestResolverWithoutDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "asn.db")
	r, err := asn.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := r.Status()
	if st.Loaded || !strings.Contains(st.Missing, asn.FetchCommand) || !strings.Contains(st.Missing, "/24") {
		t.Errorf("status %+v: want missing data, the fallback and the fetch command", st)
	}
	for ip, group := range map[string]string{
		"8.8.8.8": "8.8.8.0/24", "::ffff:8.8.4.4": "8.8.4.0/24",
		"2001:4860:4860::8888": "2001:4860:4860::/48", "fe80::1%eth0": "fe80::/48",
	} {
		res := r.Lookup(netip.MustParseAddr(ip))
		if res.Found || res.Group() != group {
			t.Errorf("%s: found=%v group %q, want %q", ip, res.Found, res.Group(), group)
		}
	}
	// A damaged file is an error at Open, not a silent fallback.
	if err := os.WriteFile(db, []byte("MTUSASN\x01garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := asn.Open(db, nil); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("open of a damaged database: %v", err)
	}
}

// TestResolverSwap swaps databases under concurrent lookups: every lookup
// must see one whole version, never a failure.
func TestResolverSwap(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	a := asntest.WriteFile(t, dir, "a.csv", []byte("8.8.8.0,8.8.8.255,15169,version A\n1.0.0.0,1.0.0.255,1,x\n"))
	b := asntest.WriteFile(t, dir, "b.csv", []byte("8.8.0.0,8.8.255.255,15169,version B\n2001:db8::,2001:db8::ffff,2,y\n"))
	imp := func(f string) {
		t.Helper()
		if _, err := asn.Import(db, []asn.Input{{Path: f}}, asn.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	imp(a)
	r, err := asn.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var bad atomic.Value
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ip := netip.MustParseAddr("8.8.8.8")
			for !stop.Load() {
				res := r.Lookup(ip)
				if !res.Found || res.ASN != 15169 || (res.Org != "version A" && res.Org != "version B") ||
					(res.Org == "version A") != (res.Prefix.Bits() == 24) {
					bad.Store(res)
				}
				n.Add(1)
			}
		})
	}
	swaps := 0
	for i := range 40 {
		imp([]string{a, b}[i%2])
		if ok, err := r.Reload(); err != nil || !ok {
			t.Fatalf("reload %d: swapped=%v %v", i, ok, err)
		}
		swaps++
		// A damaged file in place of the database is refused; the
		// current table keeps answering.
		if i == 20 {
			if err := asn.WriteAtomic(db, []byte("not a database")); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Reload(); err == nil {
				t.Error("reload of a damaged file succeeded")
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Errorf("a lookup saw %+v during the swaps", v)
	}
	t.Logf("%d swaps under %d concurrent lookups", swaps, n.Load())
}

// TestResolverWatch checks that a running resolver picks up an update
// without a restart.
func TestResolverWatch(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	r, err := asn.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Watch(ctx, 5*time.Millisecond)
	f := asntest.WriteFile(t, dir, "a.csv", []byte("8.8.8.0,8.8.8.255,15169,Google LLC\n"))
	if _, err := asn.Import(db, []asn.Input{{Path: f}}, asn.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !r.Lookup(netip.MustParseAddr("8.8.8.8")).Found {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never loaded the new database")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !r.Status().Loaded || r.Status().Attribution == "" {
		t.Errorf("status after load: %+v", r.Status())
	}
}

// TestOpenRemovesKilledImportTemp: opening the database (serve, lookup,
// status) removes the temporary file a killed import left, however recent,
// unless an import holds the directory.
func TestOpenRemovesKilledImportTemp(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "asn.db")
	left := filepath.Join(dir, "asn.db.tmp-42")
	if err := os.WriteFile(left, []byte("half a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := asn.Open(db, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the killed import's temporary file is still there: %v", err)
	}
}
