package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// Buckets and alerts survive closing and reopening the database, a
// resolution updates its alert, and retention removes what is old.
func TestWatchTables(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	var bs []NetworkBucket
	for i := 0; i < 10; i++ {
		bs = append(bs, NetworkBucket{Network: "AS64496", Start: t0.Add(time.Duration(i) * time.Minute), ASN: 64496,
			Org: "Example", Completed: i, StalledUp: 1})
	}
	bs = append(bs, NetworkBucket{Network: "192.0.2.0/24", Start: t0, Failed: 2})
	if err := s.PutBuckets(ctx, bs); err != nil {
		t.Fatal(err)
	}
	bs[3].Completed = 99 // stored again: replaced
	if err := s.PutBuckets(ctx, bs[3:4]); err != nil {
		t.Fatal(err)
	}
	a := AlertRecord{ID: "network/AS64496/1", Kind: "network", Network: "AS64496", ASN: 64496, Org: "Example",
		State: "firing", StartsAt: t0, Verdict: "pmtud_blackhole", Direction: "both", PathMTU: 1400, Body: json.RawMessage(`{"state":"firing"}`)}
	if err := s.PutAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.State, a.EndsAt, a.Body = "resolved", t0.Add(5*time.Minute), json.RawMessage(`{"state":"resolved"}`)
	if err := s.PutAlert(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Buckets(ctx, t0, "AS64496")
	if err != nil || len(got) != 10 || got[3].Completed != 99 || got[0].Org != "Example" || !got[9].Start.Equal(t0.Add(9*time.Minute)) {
		t.Fatalf("buckets %+v %v", got, err)
	}
	as, err := s2.Alerts(ctx, 10)
	if err != nil || len(as) != 1 || as[0].State != "resolved" || !as[0].EndsAt.Equal(t0.Add(5*time.Minute)) || string(as[0].Body) != `{"state":"resolved"}` {
		t.Fatalf("alerts %+v %v", as, err)
	}
	open := a
	open.ID, open.State, open.EndsAt = "network/AS64496/2", "firing", time.Time{}
	open.Body = json.RawMessage(`{"id":"network/AS64496/2","state":"firing"}`)
	if err := s2.PutAlert(ctx, open); err != nil {
		t.Fatal(err)
	}
	if n, err := s2.ResolveOpen(ctx, t0.Add(time.Hour), "restart"); err != nil || n != 1 {
		t.Fatalf("resolved %d: %v", n, err)
	}
	as, _ = s2.Alerts(ctx, 10)
	if len(as) == 2 && as[0].ID != open.ID {
		as[0], as[1] = as[1], as[0]
	}
	var body map[string]any
	json.Unmarshal(as[0].Body, &body)
	if len(as) != 2 || as[0].State != "resolved" || !as[0].EndsAt.Equal(t0.Add(time.Hour)) || body["state"] != "resolved" || body["reason"] != "restart" {
		t.Fatalf("after ResolveOpen: %+v %v", as, body)
	}
	n, err := s2.PruneWatch(ctx, t0.Add(6*time.Minute))
	if err != nil || n != 7+1 {
		t.Fatalf("pruned %d %v", n, err)
	}
	if got, _ := s2.Buckets(ctx, time.Time{}, ""); len(got) != 4 {
		t.Errorf("%d buckets left, want 4", len(got))
	}
}
