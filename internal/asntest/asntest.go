// Package asntest holds test helpers for the asn package and its users:
// the real @ip-location-db/asn dataset fetched with npm and cached outside
// the repository, small MMDB fixtures written with mmdbwriter, and a
// database of the testbed's client networks (WriteTestbed).
package asntest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Package is the npm package the real-data tests use.
const Package = "@ip-location-db/asn"

// maxAge is how long a fetched package is used before npm is asked again.
const maxAge = 7 * 24 * time.Hour

var fetchMu sync.Mutex

// CacheDir is where fetched test data lives: $XDG_CACHE_HOME/mtuscope-testdata
// or ~/.cache/mtuscope-testdata, never inside the repository.
func CacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "mtuscope-testdata"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "mtuscope-testdata"), nil
}

// IPLocationDB returns the path of the @ip-location-db/asn package tarball,
// fetched with `npm pack` into CacheDir when no copy younger than a week is
// there. When the fetch fails the test fails if CI=true and is skipped
// otherwise.
func IPLocationDB(t testing.TB) string {
	t.Helper()
	fetchMu.Lock()
	defer fetchMu.Unlock()
	dir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	cached := newest(dir)
	if cached != "" {
		if info, err := os.Stat(cached); err == nil && time.Since(info.ModTime()) < maxAge {
			return cached
		}
	}
	path, err := fetch(dir)
	if err == nil {
		return path
	}
	if cached != "" && os.Getenv("CI") != "true" {
		t.Logf("npm pack failed (%v); using the cached %s", err, cached)
		return cached
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("fetch %s for the real-data test: %v", Package, err)
	}
	t.Skipf("real-data test skipped: cannot fetch %s with npm: %v", Package, err)
	return ""
}

// newest returns the most recent package tarball in dir, or "".
func newest(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "ip-location-db-asn-*.tgz"))
	if len(m) == 0 {
		return ""
	}
	sort.Slice(m, func(i, j int) bool {
		a, _ := os.Stat(m[i])
		b, _ := os.Stat(m[j])
		return a != nil && b != nil && a.ModTime().Before(b.ModTime())
	})
	return m[len(m)-1]
}

func fetch(dir string) (string, error) {
	if _, err := exec.LookPath("npm"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "pack", Package, "--pack-destination", dir, "--silent")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("npm pack %s: %w %s", Package, err, msg)
	}
	name := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(name, '\n'); i >= 0 {
		name = name[i+1:]
	}
	path := filepath.Join(dir, name)
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil { // npm sets a fixed 1985 mtime
		return "", err
	}
	return path, nil
}

// Row is one range for an MMDB fixture.
type Row struct {
	First, Last string // addresses
	ASN         uint32
	Org         string
}

// MMDB builds a MaxMind DB of ASN records with the GeoLite2-ASN field
// names and the given database type, and returns its bytes.
func MMDB(t testing.TB, dbType string, rows []Row) []byte {
	t.Helper()
	w, err := NewMMDBWriter(dbType)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := InsertRange(w, netip.MustParseAddr(r.First), netip.MustParseAddr(r.Last), r.ASN, r.Org); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	if _, err := w.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// NewMMDBWriter returns an IPv6 mmdbwriter tree for ASN records.
func NewMMDBWriter(dbType string) (*mmdbwriter.Tree, error) {
	return mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		RecordSize:              28,
		IncludeReservedNetworks: true,
		DisableIPv4Aliasing:     true, // real data holds 2001::/32 and 2002::/16 ranges
		Description:             map[string]string{"en": "mtuscope test fixture"},
	})
}

// InsertRange adds one ASN record for [first, last].
func InsertRange(w *mmdbwriter.Tree, first, last netip.Addr, asn uint32, org string) error {
	rec := mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(asn)}
	if org != "" {
		rec["autonomous_system_organization"] = mmdbtype.String(org)
	}
	return w.InsertRange(net.IP(first.AsSlice()), net.IP(last.AsSlice()), rec)
}
