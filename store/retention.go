package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"
)

// MaxReportBytes bounds one report's stored body (compressed).
const MaxReportBytes = 256 << 10

// maxBodyBytes bounds a body once decompressed: far above what
// MaxReportBytes of any report JSON unpacks to, so only a damaged or
// crafted database reaches it.
const maxBodyBytes = 16 << 20

// ErrTooLarge is returned by Put for a body larger than MaxReportBytes
// once compressed.
var ErrTooLarge = errors.New("report too large to store")

// Retention bounds what the reports take: their age, and their bytes per
// network (Report.Network) and in all. Zero fields do not bound. The
// bytes counted are a report's row: its compressed body and text columns
// plus a fixed overhead (rowOverhead), about what it takes on disk.
type Retention struct {
	MaxAge          time.Duration
	MaxBytes        int64
	MaxNetworkBytes int64
}

// rowOverhead is counted per report for its integers, record header and
// index entries.
const rowOverhead = 64

// SetRetention sets the bounds that every Put, and Prune, apply.
func (s *Store) SetRetention(r Retention) {
	s.mu.Lock()
	s.retention = r
	s.mu.Unlock()
}

func (s *Store) bounds() (Retention, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retention, s.now()
}

// Usage is what the stored reports take.
type Usage struct {
	Reports int   `json:"reports"`
	Bytes   int64 `json:"bytes"`
}

// Usage returns the number of reports and the bytes they take as the
// retention counts them.
func (s *Store) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	err := s.r.QueryRowContext(ctx, `SELECT n, bytes FROM report_total WHERE k = 1`).Scan(&u.Reports, &u.Bytes)
	if err != nil {
		return u, fmt.Errorf("store: usage: %w", err)
	}
	return u, nil
}

// Prune applies the retention to every report now (Put applies it to the
// network it stores for and to the total): reports past the age, then
// each network's oldest past its bound, then the oldest past the total.
// It returns how many reports it deleted.
func (s *Store) Prune(ctx context.Context) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	defer tx.Rollback()
	n, err := s.prune(ctx, tx, "")
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	return n, tx.Commit()
}

// prune applies the retention inside tx: the age; the network bound for
// net, or for every network over it when net is empty; the total.
func (s *Store) prune(ctx context.Context, tx *sql.Tx, net string) (int, error) {
	r, now := s.bounds()
	deleted := 0
	if r.MaxAge > 0 {
		res, err := tx.ExecContext(ctx, `DELETE FROM reports WHERE created < ?`, now.Add(-r.MaxAge).UnixMilli())
		if err != nil {
			return deleted, err
		}
		n, _ := res.RowsAffected()
		deleted += int(n)
	}
	if r.MaxNetworkBytes > 0 {
		nets := []string{net}
		if net == "" {
			var err error
			if nets, err = overNetworks(ctx, tx, r.MaxNetworkBytes); err != nil {
				return deleted, err
			}
		}
		for _, n := range nets {
			d, err := trim(ctx, tx, r.MaxNetworkBytes, `SELECT COALESCE(MAX(bytes), 0) FROM report_nets WHERE net = ?`,
				`SELECT id, size FROM reports WHERE net = ? ORDER BY created, id LIMIT 64`, n)
			deleted += d
			if err != nil {
				return deleted, err
			}
		}
	}
	if r.MaxBytes > 0 {
		d, err := trim(ctx, tx, r.MaxBytes, `SELECT bytes FROM report_total WHERE k = 1`,
			`SELECT id, size FROM reports ORDER BY created, id LIMIT 64`)
		deleted += d
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

func overNetworks(ctx context.Context, tx *sql.Tx, limit int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT net FROM report_nets WHERE bytes > ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// trim deletes the oldest reports that oldest selects until the bytes
// total reads are at most limit.
func trim(ctx context.Context, tx *sql.Tx, limit int64, total, oldest string, args ...any) (int, error) {
	var have int64
	if err := tx.QueryRowContext(ctx, total, args...).Scan(&have); err != nil {
		return 0, err
	}
	deleted := 0
	for have > limit {
		type row struct {
			id   string
			size int64
		}
		rows, err := tx.QueryContext(ctx, oldest, args...)
		if err != nil {
			return deleted, err
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.size); err != nil {
				rows.Close()
				return deleted, err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return deleted, err
		}
		if len(batch) == 0 {
			break
		}
		for _, r := range batch {
			if have <= limit {
				break
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM reports WHERE id = ?`, r.id); err != nil {
				return deleted, err
			}
			have -= r.size
			deleted++
		}
	}
	return deleted, nil
}

// rowBytes is what a report's row counts against the retention.
func rowBytes(rep Report, body int) int64 {
	return int64(body + len(rep.ID) + len(rep.Source) + len(rep.ClientIP) + len(rep.Org) + len(rep.Verdict) +
		len(rep.Direction) + len(rep.Network) + rowOverhead)
}

// totalsSchema keeps the bytes and count of the reports, per network and
// in all, up to date on every insert and delete, so that the retention
// reads them without a scan.
const totalsSchema = `
CREATE INDEX IF NOT EXISTS reports_net ON reports(net, created);
CREATE TABLE IF NOT EXISTS report_nets (net TEXT PRIMARY KEY, bytes INTEGER NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS report_total (k INTEGER PRIMARY KEY CHECK (k = 1), bytes INTEGER NOT NULL, n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS reports_counted AFTER INSERT ON reports BEGIN
	INSERT OR IGNORE INTO report_nets (net, bytes, n) VALUES (NEW.net, 0, 0);
	UPDATE report_nets SET bytes = bytes + NEW.size, n = n + 1 WHERE net = NEW.net;
	UPDATE report_total SET bytes = bytes + NEW.size, n = n + 1 WHERE k = 1;
END;
CREATE TRIGGER IF NOT EXISTS reports_uncounted AFTER DELETE ON reports BEGIN
	UPDATE report_nets SET bytes = bytes - OLD.size, n = n - 1 WHERE net = OLD.net;
	DELETE FROM report_nets WHERE net = OLD.net AND n <= 0;
	UPDATE report_total SET bytes = bytes - OLD.size, n = n - 1 WHERE k = 1;
END;
`

// migrate brings a database written before the retention up to date: the
// net and size columns (a report's network is then its address), and the
// totals counted once from the reports.
func migrate(w *sql.DB) error {
	tx, err := w.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cols := map[string]bool{}
	rows, err := tx.Query(`SELECT name FROM pragma_table_info('reports')`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return err
		}
		cols[c] = true
	}
	rows.Close()
	for _, c := range []string{`net TEXT NOT NULL DEFAULT ''`, `size INTEGER NOT NULL DEFAULT 0`} {
		if name, _, _ := bytes.Cut([]byte(c), []byte(" ")); !cols[string(name)] {
			if _, err := tx.Exec(`ALTER TABLE reports ADD COLUMN ` + c); err != nil {
				return err
			}
		}
	}
	if _, err := tx.Exec(totalsSchema); err != nil {
		return err
	}
	var counted int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM report_total`).Scan(&counted); err != nil {
		return err
	}
	if counted == 0 {
		for _, q := range []string{
			`UPDATE reports SET net = client_ip WHERE net = ''`,
			fmt.Sprintf(`UPDATE reports SET size = length(body) + length(CAST(id AS BLOB)) + length(CAST(source AS BLOB)) +
				length(CAST(client_ip AS BLOB)) + length(CAST(org AS BLOB)) + length(CAST(verdict AS BLOB)) +
				length(CAST(direction AS BLOB)) + length(CAST(net AS BLOB)) + %d WHERE size = 0`, rowOverhead),
			`DELETE FROM report_nets`,
			`INSERT INTO report_nets (net, bytes, n) SELECT net, SUM(size), COUNT(*) FROM reports GROUP BY net`,
			`INSERT INTO report_total (k, bytes, n) SELECT 1, COALESCE(SUM(size), 0), COUNT(*) FROM reports`,
		} {
			if _, err := tx.Exec(q); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// compress packs a report body (gzip: JSON with its repeated keys shrinks
// several times over).
func compress(body []byte) ([]byte, error) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// decompress unpacks a stored body; one stored before compression (JSON,
// no gzip header) is returned as it is.
func decompress(body []byte) ([]byte, error) {
	if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		return body, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("stored body: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("stored body: %w", err)
	}
	if len(out) > maxBodyBytes {
		return nil, fmt.Errorf("stored body: more than %d bytes unpacked", maxBodyBytes)
	}
	return out, nil
}
