package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// The monitor's tables: per-network time buckets and the alert history.
const watchSchema = `
CREATE TABLE IF NOT EXISTS network_buckets (
	network      TEXT NOT NULL,
	start        INTEGER NOT NULL,
	asn          INTEGER NOT NULL,
	org          TEXT NOT NULL,
	completed    INTEGER NOT NULL,
	stalled_up   INTEGER NOT NULL,
	stalled_down INTEGER NOT NULL,
	failed       INTEGER NOT NULL,
	PRIMARY KEY (network, start)
);
CREATE INDEX IF NOT EXISTS network_buckets_start ON network_buckets(start);
CREATE TABLE IF NOT EXISTS alerts (
	id        TEXT PRIMARY KEY,
	kind      TEXT NOT NULL,
	network   TEXT NOT NULL,
	asn       INTEGER NOT NULL,
	org       TEXT NOT NULL,
	state     TEXT NOT NULL,
	starts_at INTEGER NOT NULL,
	ends_at   INTEGER NOT NULL,
	verdict   TEXT NOT NULL,
	direction TEXT NOT NULL,
	path_mtu  INTEGER NOT NULL,
	body      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_starts ON alerts(starts_at);
`

// NetworkBucket is one client network's handshakes in one time bucket.
type NetworkBucket struct {
	Network     string    `json:"network"`
	Start       time.Time `json:"start"`
	ASN         uint32    `json:"asn"`
	Org         string    `json:"org"`
	Completed   int       `json:"completed"`
	StalledUp   int       `json:"stalled_up"`
	StalledDown int       `json:"stalled_down"`
	Failed      int       `json:"failed"`
}

// AlertRecord is one alert of the monitor, from firing to resolution;
// Body is the whole alert as JSON.
type AlertRecord struct {
	ID        string          `json:"id"`
	Kind      string          `json:"kind"`
	Network   string          `json:"network"`
	ASN       uint32          `json:"asn"`
	Org       string          `json:"org"`
	State     string          `json:"state"`
	StartsAt  time.Time       `json:"starts_at"`
	EndsAt    time.Time       `json:"ends_at,omitzero"`
	Verdict   string          `json:"verdict"`
	Direction string          `json:"direction"`
	PathMTU   int             `json:"path_mtu"`
	Body      json.RawMessage `json:"body"`
}

// PutBuckets stores buckets in one transaction; a bucket stored again
// (same network and start) replaces the old one.
func (s *Store) PutBuckets(ctx context.Context, bs []NetworkBucket) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: buckets: %w", err)
	}
	defer tx.Rollback()
	for _, b := range bs {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO network_buckets
			(network, start, asn, org, completed, stalled_up, stalled_down, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			b.Network, b.Start.UnixMilli(), b.ASN, b.Org, b.Completed, b.StalledUp, b.StalledDown, b.Failed); err != nil {
			return fmt.Errorf("store: bucket %s %s: %w", b.Network, b.Start, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: buckets: %w", err)
	}
	return nil
}

// Buckets returns the buckets starting at or after since, of one network
// ("" for all), oldest first.
func (s *Store) Buckets(ctx context.Context, since time.Time, network string) ([]NetworkBucket, error) {
	q := `SELECT network, start, asn, org, completed, stalled_up, stalled_down, failed FROM network_buckets WHERE start >= ?`
	args := []any{since.UnixMilli()}
	if network != "" {
		q += ` AND network = ?`
		args = append(args, network)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY start, network`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: buckets: %w", err)
	}
	defer rows.Close()
	var out []NetworkBucket
	for rows.Next() {
		var b NetworkBucket
		var start int64
		if err := rows.Scan(&b.Network, &start, &b.ASN, &b.Org, &b.Completed, &b.StalledUp, &b.StalledDown, &b.Failed); err != nil {
			return nil, fmt.Errorf("store: buckets: %w", err)
		}
		b.Start = time.UnixMilli(start).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: buckets: %w", err)
	}
	return out, nil
}

// PutAlert stores an alert's state: the firing record, then its
// resolution under the same ID.
func (s *Store) PutAlert(ctx context.Context, a AlertRecord) error {
	if a.ID == "" || len(a.Body) == 0 {
		return fmt.Errorf("store: alert without id or body")
	}
	var ends int64
	if !a.EndsAt.IsZero() {
		ends = a.EndsAt.UnixMilli()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO alerts
		(id, kind, network, asn, org, state, starts_at, ends_at, verdict, direction, path_mtu, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET state = excluded.state, ends_at = excluded.ends_at, body = excluded.body`,
		a.ID, a.Kind, a.Network, a.ASN, a.Org, a.State, a.StartsAt.UnixMilli(), ends, a.Verdict, a.Direction, a.PathMTU, []byte(a.Body))
	if err != nil {
		return fmt.Errorf("store: alert %s: %w", a.ID, err)
	}
	return nil
}

// Alerts returns up to limit alerts, newest first.
func (s *Store) Alerts(ctx context.Context, limit int) ([]AlertRecord, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, kind, network, asn, org, state, starts_at, ends_at, verdict, direction,
		path_mtu, body FROM alerts ORDER BY starts_at DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: alerts: %w", err)
	}
	defer rows.Close()
	var out []AlertRecord
	for rows.Next() {
		var a AlertRecord
		var starts, ends int64
		var body []byte
		if err := rows.Scan(&a.ID, &a.Kind, &a.Network, &a.ASN, &a.Org, &a.State, &starts, &ends, &a.Verdict,
			&a.Direction, &a.PathMTU, &body); err != nil {
			return nil, fmt.Errorf("store: alerts: %w", err)
		}
		a.StartsAt = time.UnixMilli(starts).UTC()
		if ends != 0 {
			a.EndsAt = time.UnixMilli(ends).UTC()
		}
		a.Body = body
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: alerts: %w", err)
	}
	return out, nil
}

// PruneWatch deletes buckets that started before cutoff and resolved
// alerts that ended before it, and says how many rows went.
func (s *Store) PruneWatch(ctx context.Context, cutoff time.Time) (int64, error) {
	c := cutoff.UnixMilli()
	r1, err := s.w.ExecContext(ctx, `DELETE FROM network_buckets WHERE start < ?`, c)
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	r2, err := s.w.ExecContext(ctx, `DELETE FROM alerts WHERE state = 'resolved' AND ends_at < ?`, c)
	if err != nil {
		return 0, fmt.Errorf("store: prune: %w", err)
	}
	n1, _ := r1.RowsAffected()
	n2, _ := r2.RowsAffected()
	return n1 + n2, nil
}

// ResolveOpen marks every alert still firing as resolved at the given
// time with the given reason (a restarted monitor starts without them),
// and says how many it changed.
func (s *Store) ResolveOpen(ctx context.Context, at time.Time, reason string) (int64, error) {
	r, err := s.w.ExecContext(ctx, `UPDATE alerts SET state = 'resolved', ends_at = ?,
		body = json_set(body, '$.state', 'resolved', '$.ends_at', ?, '$.reason', ?) WHERE state = 'firing'`,
		at.UnixMilli(), at.UTC().Format(time.RFC3339Nano), reason)
	if err != nil {
		return 0, fmt.Errorf("store: resolve open alerts: %w", err)
	}
	n, _ := r.RowsAffected()
	return n, nil
}
