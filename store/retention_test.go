package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// randomBody is a JSON body of about n bytes that does not compress.
func randomBody(rng *rand.Rand, n int) json.RawMessage {
	b := make([]byte, n/2)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return json.RawMessage(`{"x":"` + hex.EncodeToString(b) + `"}`)
}

func fileBytes(path string) int64 {
	if st, err := os.Stat(path); err == nil {
		return st.Size()
	}
	return 0
}

// TestRetentionBounds: with a retention set, the reports of one network
// and of all networks never take more than their bounds, the oldest go
// first, reports past the age go, and the database file stays near the
// bound. Without one (as before) every report stays.
func TestRetentionBounds(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	const perNet, total = 32 << 10, 128 << 10
	s.SetRetention(Retention{MaxNetworkBytes: perNet, MaxBytes: total, MaxAge: 30 * 24 * time.Hour})
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return t0.Add(24 * time.Hour) }
	put := func(i int, net string) {
		r := rep(fmt.Sprintf("r%05d", i), 64496, "ok", t0.Add(time.Duration(i)*time.Second))
		r.Network, r.Body = net, randomBody(rng, 4000)
		if err := s.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// One address floods: its reports stay within its bound.
	// -short (the race pass, where the pure-Go SQLite is slow): fewer.
	one, many := 100, 600
	if testing.Short() {
		one, many = 30, 200
	}
	for i := 0; i < one; i++ {
		put(i, "192.0.2.1")
	}
	u, _ := s.Usage(ctx)
	t.Logf("%d reports of 4 KB from one address: %d kept, %d bytes (bound %d)", one, u.Reports, u.Bytes, perNet)
	if u.Bytes > perNet || u.Reports < 10 {
		t.Errorf("one address: %+v, want at most %d bytes and its newest reports", u, perNet)
	}
	if _, err := s.Get(ctx, fmt.Sprintf("r%05d", one-1)); err != nil {
		t.Errorf("the newest report went: %v", err)
	}
	if _, err := s.Get(ctx, "r00000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the oldest report stayed: %v", err)
	}
	// Many addresses: the total stays within its bound, oldest first.
	peak := int64(0)
	for i := one; i < many; i++ {
		put(i, fmt.Sprintf("198.51.100.%d", i%50))
		if i%10 == 0 {
			u, _ := s.Usage(ctx)
			peak = max(peak, u.Bytes)
		}
	}
	u, _ = s.Usage(ctx)
	var counted int64
	s.r.QueryRow(`SELECT COALESCE(SUM(size), 0) FROM reports`).Scan(&counted)
	wal := fileBytes(path + "-wal")
	file := fileBytes(path) + wal
	t.Logf("%d more from 50 addresses (4 KB each): %d kept, %d bytes counted (peak %d, bound %d), database %d bytes (%d of them the write-ahead log)",
		many-one, u.Reports, u.Bytes, peak, total, file, wal)
	if u.Bytes > total || peak > total || counted != u.Bytes {
		t.Errorf("all: %+v (rows sum to %d, peak %d), want at most %d and the totals right", u, counted, peak, total)
	}
	// 4 KB bodies take two 4 KB pages each: the file is about twice the
	// bytes counted.
	if file-wal > 3*total || wal > walLimit+1<<20 {
		t.Errorf("database %d bytes and log %d for a bound of %d", file-wal, wal, total)
	}
	if _, err := s.Get(ctx, fmt.Sprintf("r%05d", many-1)); err != nil {
		t.Errorf("the newest report went: %v", err)
	}
	// Time passes: every report is past the age.
	s.now = func() time.Time { return t0.Add(31 * 24 * time.Hour) }
	n, err := s.Prune(ctx)
	u, _ = s.Usage(ctx)
	if err != nil || u.Reports != 0 || u.Bytes != 0 || n == 0 {
		t.Errorf("after the age: pruned %d (%v), %+v left", n, err, u)
	}
	var nets int
	s.r.QueryRow(`SELECT COUNT(*) FROM report_nets`).Scan(&nets)
	if nets != 0 {
		t.Errorf("%d networks still counted with no reports", nets)
	}
}

// TestReportTooLarge: a body that compresses to more than MaxReportBytes is
// refused and nothing is stored.
func TestReportTooLarge(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	r := rep("big", 64496, "ok", time.Now())
	r.Body = randomBody(rand.New(rand.NewPCG(5, 6)), 2*MaxReportBytes+1024)
	if err := s.Put(ctx, r); !errors.Is(err, ErrTooLarge) {
		t.Errorf("put: %v, want ErrTooLarge", err)
	}
	if u, _ := s.Usage(ctx); u.Reports != 0 {
		t.Errorf("%+v stored", u)
	}
}

// TestOpenBeforeRetention: a database written before the retention (no net
// or size column, bodies as plain JSON) opens with its reports counted,
// readable, and bounded from then on.
func TestOpenBeforeRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reports.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE reports (id TEXT PRIMARY KEY, created INTEGER NOT NULL, source TEXT NOT NULL,
		client_ip TEXT NOT NULL, family INTEGER NOT NULL, asn INTEGER NOT NULL, org TEXT NOT NULL, verdict TEXT NOT NULL,
		direction TEXT NOT NULL, path_mtu INTEGER NOT NULL, body BLOB NOT NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := db.Exec(`INSERT INTO reports VALUES (?, ?, 'page', '192.0.2.7', 4, 64496, 'x', 'ok', 'none', 1500, ?)`,
			fmt.Sprintf("old%d", i), int64(i), []byte(`{"id":"old`+fmt.Sprint(i)+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	u, err := s.Usage(ctx)
	if err != nil || u.Reports != 10 || u.Bytes == 0 {
		t.Fatalf("usage after opening an old database: %+v, %v", u, err)
	}
	if got, err := s.Get(ctx, "old3"); err != nil || string(got.Body) != `{"id":"old3"}` {
		t.Errorf("old report: %q, %v", got.Body, err)
	}
	s.SetRetention(Retention{MaxNetworkBytes: u.Bytes / 2})
	r := rep("new", 64496, "ok", time.Now())
	r.ClientIP = "192.0.2.7"
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "old0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the address's oldest report stayed past its bound: %v", err)
	}
	if got, err := s.Get(ctx, "new"); err != nil || string(got.Body) != `{"id":"new"}` {
		t.Errorf("new report: %q, %v", got.Body, err)
	}
}
