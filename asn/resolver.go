package asn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Resolver answers lookups from the database file at Path and can swap in
// a new version of it while lookups run: each Lookup reads the current
// table once, so it sees the old table or the new one, never a mix, and
// never fails mid-swap. Without a database it answers with the /24 and /48
// fallback. It is safe for concurrent use.
type Resolver struct {
	path string
	log  *slog.Logger
	cur  atomic.Pointer[Table]

	mu   sync.Mutex // serialises reloads
	stat fileStamp
}

// fileStamp identifies a version of the database file.
type fileStamp struct {
	size    int64
	modTime time.Time
	ino     any
}

// Open returns a Resolver for the database at path. A missing file is not
// an error: the Resolver falls back to /24 and /48 groups and Status says
// so. A file that exists but cannot be loaded is an error.
func Open(path string, logger *slog.Logger) (*Resolver, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{path: path, log: logger}
	// Temporary files of an import that was killed go at the next start
	// of whatever reads the database, when no import is running.
	if unlock, ok := tryLockDir(filepath.Dir(path)); ok {
		removeTemps(filepath.Dir(path), filepath.Base(path)+".tmp-", lockedTempAge)
		unlock()
	}
	if _, err := r.Reload(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return r, nil
}

// Lookup answers from the current table, or with the fallback group.
func (r *Resolver) Lookup(addr netip.Addr) Result {
	if t := r.cur.Load(); t != nil {
		return t.Lookup(addr)
	}
	return fallback(Normalize(addr))
}

// Table returns the current table, nil without a database.
func (r *Resolver) Table() *Table { return r.cur.Load() }

// Reload loads the database file again if it changed since the last load
// and swaps it in. It reports whether it swapped. When the file is missing
// or damaged the current table stays in use and the error says why.
func (r *Resolver) Reload() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	info, err := os.Stat(r.path)
	if err != nil {
		return false, fmt.Errorf("ASN database: %w", err)
	}
	st := stampOf(info)
	if r.cur.Load() != nil && st == r.stat {
		return false, nil
	}
	t, err := Load(r.path)
	if err != nil {
		return false, err
	}
	r.cur.Store(t)
	r.stat = st
	m := t.Meta()
	r.log.Debug("ASN database loaded", "path", r.path, "v4_ranges", m.V4Ranges, "v6_ranges", m.V6Ranges,
		"imported_at", m.ImportedAt)
	return true, nil
}

// Watch reloads the database whenever its file changes, checking every
// interval, until ctx is done. Failed reloads are logged and the current
// table stays in use.
func (r *Resolver) Watch(ctx context.Context, interval time.Duration) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			if _, err := r.Reload(); err != nil && !errors.Is(err, fs.ErrNotExist) {
				r.log.Warn("ASN database reload failed; keeping the current one", "err", err)
			}
		}
	}
}

// Status describes what a Resolver answers from, for every consumer to show.
type Status struct {
	Path   string `json:"path"`
	Loaded bool   `json:"loaded"`
	Meta   *Meta  `json:"meta,omitempty"`
	// Attribution must be shown next to any data from the database.
	Attribution string `json:"attribution,omitempty"`
	// Missing explains the fallback and names the command that fetches
	// the data; empty when a database is loaded.
	Missing string `json:"missing,omitempty"`
}

// Status returns the current state.
func (r *Resolver) Status() Status {
	t := r.cur.Load()
	if t == nil {
		return Status{Path: r.path, Missing: MissingMessage(r.path)}
	}
	m := t.Meta()
	return Status{Path: r.path, Loaded: true, Meta: &m, Attribution: m.Attribution()}
}

// MissingMessage is the text consumers show when there is no database.
func MissingMessage(path string) string {
	return fmt.Sprintf("no ASN data (no database at %s): clients are grouped by /24 (IPv4) and /48 (IPv6) "+
		"instead of by network; fetch the data with `%s`", path, FetchCommand)
}
