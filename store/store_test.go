package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reports.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func rep(id string, asn uint32, verdict string, at time.Time) Report {
	return Report{ID: id, Created: at, Source: "page", ClientIP: "192.0.2.1", Family: 4, ASN: asn,
		Org: fmt.Sprintf("org%d", asn), Verdict: verdict, Direction: "none", PathMTU: 1500,
		Body: json.RawMessage(`{"id":"` + id + `"}`)}
}

func TestPutGetListSummary(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, r := range []Report{
		rep("a", 64496, "ok", t0),
		rep("b", 64496, "pmtud_blackhole", t0.Add(time.Minute)),
		rep("c", 64497, "pmtud_blackhole", t0.Add(2*time.Minute)),
		rep("d", 64497, "pmtud_blackhole", t0.Add(3*time.Minute)),
	} {
		if err := s.Put(ctx, r); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := s.Put(ctx, rep("a", 1, "ok", t0)); err == nil {
		t.Error("duplicate id stored")
	}
	if err := s.Put(ctx, Report{ID: "x"}); err == nil {
		t.Error("report without body stored")
	}
	got, err := s.Get(ctx, "b")
	if err != nil || got.Verdict != "pmtud_blackhole" || !got.Created.Equal(t0.Add(time.Minute)) || string(got.Body) != `{"id":"b"}` {
		t.Errorf("get b = %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	cases := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all newest first", Filter{}, []string{"d", "c", "b", "a"}},
		{"by asn", Filter{ASN: 64496}, []string{"b", "a"}},
		{"by verdict", Filter{Verdict: "pmtud_blackhole"}, []string{"d", "c", "b"}},
		{"since", Filter{Since: t0.Add(2 * time.Minute)}, []string{"d", "c"}},
		{"until", Filter{Until: t0.Add(time.Minute)}, []string{"a"}},
		{"limit", Filter{Limit: 1}, []string{"d"}},
		{"nothing", Filter{ASN: 1}, []string{}},
	}
	for _, c := range cases {
		l, err := s.List(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var ids []string
		for _, r := range l {
			ids = append(ids, r.ID)
			if r.Body != nil {
				t.Errorf("%s: List read the body of %s", c.name, r.ID)
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, ids, c.want)
		}
	}
	sum, err := s.Summary(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum) != 2 || sum[0].ASN != 64497 || sum[0].Problems != 2 || sum[1].Reports != 2 || sum[1].Verdicts["ok"] != 1 {
		t.Errorf("summary = %+v", sum)
	}
	// Reopen: everything is still there.
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n, err := s2.Count(ctx); err != nil || n != 4 {
		t.Errorf("after reopen: %d reports, %v", n, err)
	}
}

func TestDurabilitySettings(t *testing.T) {
	s, _ := open(t)
	var mode string
	var sync int
	if err := s.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q, %v", mode, err)
	}
	if err := s.w.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Errorf("synchronous %d, want 2 (FULL), %v", sync, err)
	}
}

func TestConcurrentPuts(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Put(ctx, rep(fmt.Sprintf("r%03d", i), uint32(64496+i%3), "ok", time.Now()))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.Count(ctx); n != 200 {
		t.Errorf("%d reports, want 200", n)
	}
}

func TestOpenBadPath(t *testing.T) {
	if _, err := Open("/proc/self/nonexistent/x.db"); err == nil {
		t.Error("opened a database under /proc")
	}
}

// TestOpenNotADatabase: a file that is not SQLite is refused with a clear
// error and left exactly as it was.
func TestOpenNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reports.db")
	junk := []byte("this is a text file, not a database\n" + string(make([]byte, 4096)))
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("opened a text file as a report database")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the file: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(junk) {
		t.Error("the file was changed by the failed open")
	}
}

// TestOpenOddPaths: data directories whose names hold URI syntax ('#', '?',
// '%', spaces, '&', '=') keep the database inside them, under exactly the
// name given, and it works.
func TestOpenOddPaths(t *testing.T) {
	for _, dir := range []string{"with#hash", "with?question", "with%25percent", "with%zz", "with space", "a&b=c", "semi;colon", "ünï"} {
		t.Run(dir, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, dir, "reports.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.Put(ctx, rep("x", 64496, "ok", time.Now())); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "x"); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if _, err := os.Stat(path); err != nil {
				t.Errorf("database not at %s: %v", path, err)
			}
			// Nothing was written anywhere else: the root holds only dir.
			var stray []string
			filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && filepath.Dir(p) != filepath.Join(root, dir) {
					stray = append(stray, p)
				}
				return nil
			})
			if len(stray) > 0 {
				t.Errorf("files outside the data directory: %q", stray)
			}
			s2, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if n, err := s2.Count(ctx); err != nil || n != 1 {
				t.Errorf("after reopen: %d reports, %v", n, err)
			}
		})
	}
}
