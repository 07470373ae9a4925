// Package store keeps mtuscope's reports in an embedded SQLite database,
// written durably (WAL, synchronous=FULL): a report that Put returned for is
// on disk and survives a crash of the process or the machine. Report
// bodies are stored compressed, at most MaxReportBytes each, and the
// retention (Retention) bounds their age and their bytes per network and
// in all, the oldest going first.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, so the binary stays static
)

// ErrNotFound is returned by Get for an ID that names no report.
var ErrNotFound = errors.New("store: no such report")

// Report is one stored diagnosis with the columns that the list and the
// per-ASN summary filter on; Body is the whole report as JSON.
type Report struct {
	ID        string    `json:"id"`
	Created   time.Time `json:"created"`
	Source    string    `json:"source"` // "page" or "probe"
	ClientIP  string    `json:"client_ip"`
	Family    int       `json:"family"`
	ASN       uint32    `json:"asn"`
	Org       string    `json:"org"`
	Verdict   string    `json:"verdict"`
	Direction string    `json:"direction"`
	PathMTU   int       `json:"path_mtu"`
	// Network is what the per-network bound counts the report against
	// (the server gives the client's address, or its /64 for IPv6);
	// empty: ClientIP.
	Network string          `json:"network,omitempty"`
	Body    json.RawMessage `json:"body"`
}

// Store is an open report database. It is safe for concurrent use.
type Store struct {
	w    *sql.DB // one connection: SQLite has one writer at a time anyway
	r    *sql.DB
	path string

	mu        sync.Mutex
	retention Retention
	now       func() time.Time
}

const schema = `
CREATE TABLE IF NOT EXISTS reports (
	id        TEXT PRIMARY KEY,
	created   INTEGER NOT NULL,
	source    TEXT NOT NULL,
	client_ip TEXT NOT NULL,
	family    INTEGER NOT NULL,
	asn       INTEGER NOT NULL,
	org       TEXT NOT NULL,
	verdict   TEXT NOT NULL,
	direction TEXT NOT NULL,
	path_mtu  INTEGER NOT NULL,
	body      BLOB NOT NULL,
	net       TEXT NOT NULL DEFAULT '',
	size      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reports_created ON reports(created);
CREATE INDEX IF NOT EXISTS reports_asn ON reports(asn, created);
CREATE INDEX IF NOT EXISTS reports_verdict ON reports(verdict, created);
CREATE TABLE IF NOT EXISTS health (k INTEGER PRIMARY KEY, t INTEGER NOT NULL);
`

// walLimit is the size the write-ahead log is cut back to after each
// checkpoint (SQLite checkpoints every 1000 pages, about 4 MB).
const walLimit = 4 << 20

// Open opens (creating if needed) the database file at path. Any path
// works, including ones with '#', '?', '%' or spaces in it.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	params := url.Values{"_pragma": {"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)",
		fmt.Sprintf("journal_size_limit(%d)", walLimit)}}
	wdsn, err := dsn(path, params, url.Values{"_txlock": {"immediate"}})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(schema + watchSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := migrate(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	var mode string
	if err := w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		w.Close()
		return nil, fmt.Errorf("store: open %s: journal mode %q, want wal (%v)", path, mode, err)
	}
	rdsn, err := dsn(path, params, url.Values{"mode": {"ro"}})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	return &Store{w: w, r: r, path: path, now: time.Now}, nil
}

// dsn is the connection string of modernc.org/sqlite for the file at path:
// an SQLite URI (file:///abs/path?query) whose path is percent-escaped, so
// that '?', '#' and '%' in a directory name stay part of the path (SQLite
// decodes %HH in the path; the driver reads its own parameters from the
// query after the first '?').
func dsn(path string, params ...url.Values) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	for _, p := range params {
		for k, vs := range p {
			q[k] = append(q[k], vs...)
		}
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	// URL.String writes "file:///abs/path": an empty authority, which SQLite
	// accepts as the local host.
	return u.String(), nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// Put stores rep, its body compressed, and applies the retention in the
// same transaction (the oldest reports go first). When it returns nil the
// report is on disk. A body that compresses to more than MaxReportBytes is
// refused with ErrTooLarge.
func (s *Store) Put(ctx context.Context, rep Report) error {
	if rep.ID == "" || len(rep.Body) == 0 {
		return errors.New("store: report without id or body")
	}
	body, err := compress(rep.Body)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", rep.ID, err)
	}
	if len(body) > MaxReportBytes {
		return fmt.Errorf("store: put %s: %w (%d bytes compressed, at most %d)", rep.ID, ErrTooLarge, len(body), MaxReportBytes)
	}
	if rep.Network == "" {
		rep.Network = rep.ClientIP
	}
	size := rowBytes(rep, len(body))
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", rep.ID, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO reports
		(id, created, source, client_ip, family, asn, org, verdict, direction, path_mtu, body, net, size)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rep.ID, rep.Created.UnixMilli(), rep.Source, rep.ClientIP, rep.Family, rep.ASN, rep.Org,
		rep.Verdict, rep.Direction, rep.PathMTU, body, rep.Network, size)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", rep.ID, err)
	}
	if _, err := s.prune(ctx, tx, rep.Network); err != nil {
		return fmt.Errorf("store: put %s: %w", rep.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: put %s: %w", rep.ID, err)
	}
	return nil
}

const (
	columns = `id, created, source, client_ip, family, asn, org, verdict, direction, path_mtu, body`
	// listColumns leave the body out: list views never read report bodies.
	listColumns = `id, created, source, client_ip, family, asn, org, verdict, direction, path_mtu, NULL`
)

func scan(row interface{ Scan(...any) error }) (Report, error) {
	var rep Report
	var created int64
	var body []byte
	err := row.Scan(&rep.ID, &created, &rep.Source, &rep.ClientIP, &rep.Family, &rep.ASN, &rep.Org,
		&rep.Verdict, &rep.Direction, &rep.PathMTU, &body)
	rep.Created = time.UnixMilli(created).UTC()
	if err == nil && body != nil {
		body, err = decompress(body)
	}
	rep.Body = body
	return rep, err
}

// Get returns the report with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Report, error) {
	rep, err := scan(s.r.QueryRowContext(ctx, `SELECT `+columns+` FROM reports WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Report{}, ErrNotFound
	}
	if err != nil {
		return Report{}, fmt.Errorf("store: get %s: %w", id, err)
	}
	return rep, nil
}

// Filter selects reports; zero fields select everything.
type Filter struct {
	ASN     uint32
	Verdict string
	Since   time.Time
	Until   time.Time
	// Limit caps the number of reports (newest first); 0 means 100.
	Limit int
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.ASN != 0 {
		conds, args = append(conds, "asn = ?"), append(args, f.ASN)
	}
	if f.Verdict != "" {
		conds, args = append(conds, "verdict = ?"), append(args, f.Verdict)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "created >= ?"), append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "created < ?"), append(args, f.Until.UnixMilli())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns the reports f selects, newest first, without their bodies
// (Body is nil): a list never reads what may be large.
func (s *Store) List(ctx context.Context, f Filter) ([]Report, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	where, args := f.where()
	rows, err := s.r.QueryContext(ctx, `SELECT `+listColumns+` FROM reports`+where+
		` ORDER BY created DESC, id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	out := []Report{}
	for rows.Next() {
		rep, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		out = append(out, rep)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

// ASNSummary is the count of reports per verdict for one ASN.
type ASNSummary struct {
	ASN      uint32         `json:"asn"`
	Org      string         `json:"org"`
	Reports  int            `json:"reports"`
	Problems int            `json:"problems"`
	Verdicts map[string]int `json:"verdicts"`
}

// Summary counts the reports f selects (Limit ignored) per ASN, the ASNs
// with the most problems first.
func (s *Store) Summary(ctx context.Context, f Filter) ([]ASNSummary, error) {
	where, args := f.where()
	rows, err := s.r.QueryContext(ctx, `SELECT asn, MAX(org), verdict, COUNT(*) FROM reports`+where+
		` GROUP BY asn, verdict`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: summary: %w", err)
	}
	defer rows.Close()
	by := map[uint32]*ASNSummary{}
	var order []uint32
	for rows.Next() {
		var asn uint32
		var org, verdict string
		var n int
		if err := rows.Scan(&asn, &org, &verdict, &n); err != nil {
			return nil, fmt.Errorf("store: summary: %w", err)
		}
		s := by[asn]
		if s == nil {
			s = &ASNSummary{ASN: asn, Org: org, Verdicts: map[string]int{}}
			by[asn] = s
			order = append(order, asn)
		}
		s.Reports += n
		s.Verdicts[verdict] += n
		if verdict != "ok" && verdict != "pmtu_reduced" {
			s.Problems += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: summary: %w", err)
	}
	out := make([]ASNSummary, 0, len(order))
	for _, a := range order {
		out = append(out, *by[a])
	}
	sortSummary(out)
	return out, nil
}

// CheckWrite tells whether a report could be stored now: a write
// transaction commits to disk (a read-only, locked or damaged database
// fails it) and the database's file system has at least minFree bytes
// free (SQLite may still find room in its own free pages when the disk is
// full; reports would not for long).
func (s *Store) CheckWrite(ctx context.Context, minFree uint64) error {
	if _, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO health (k, t) VALUES (1, ?)`, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("store: write check: %w", err)
	}
	free, err := freeBytes(filepath.Dir(s.path))
	if err != nil {
		return fmt.Errorf("store: free space: %w", err)
	}
	if free < minFree {
		return fmt.Errorf("store: %d bytes free on the database's file system, below %d", free, minFree)
	}
	return nil
}

// Count returns the number of stored reports.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM reports`).Scan(&n)
	return n, err
}

func sortSummary(s []ASNSummary) {
	slices.SortFunc(s, func(a, b ASNSummary) int {
		if a.Problems != b.Problems {
			return b.Problems - a.Problems
		}
		if a.Reports != b.Reports {
			return b.Reports - a.Reports
		}
		return int(a.ASN) - int(b.ASN)
	})
}
