package server

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/internal/pageclient"
)

// TestPageClientLoopback: package pageclient, the page's check in Go that
// mtuscope-serve-load runs by the hundred, speaks the page's protocol: its
// check ends in a stored report holding every rung it tested.
func TestPageClientLoopback(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := pageclient.Check(ctx, c, s.url("https", ""), (&net.Dialer{}).DialContext)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != "ok" || res.ReportID == "" {
		t.Fatalf("check: %+v, want a stored report with verdict ok", res)
	}
	var rep Report
	code, body := do(t, c, "GET", s.url("https", api.ReportPagePath+res.ReportID+".json"), "", nil)
	if code != 200 {
		t.Fatalf("report json: %d", code)
	}
	decode(t, body, &rep)
	p := rep.Primary()
	if len(p.Rungs) != len(s.rungs) {
		t.Fatalf("%d rungs in the report, want %d", len(p.Rungs), len(s.rungs))
	}
	for _, r := range p.Rungs {
		if b := r.Browser; b.Hello != api.StepOK || b.Down != api.StepOK || b.Up != api.StepOK || b.Probe != api.StepOpened {
			t.Errorf("rung %d: the page's part %+v", r.MSS, b)
		}
	}
}
