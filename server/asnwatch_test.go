package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/asn"
)

// probeReport is a small probe submission.
const probeReport = `{"target":"198.51.100.7:443","evidence":[{"family":4,"local_mtu":1500,"connected":true,
"segments":[{"up_size":1300,"down_size":1300,"up":"passed","down":"passed","outcome":"completed"}]}]}`

// TestASNUpdateWhileServing: an `asn update` that replaces the database
// while the server runs changes the network the server files reports
// under, without a restart.
func TestASNUpdateWhileServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, asn.DBFile)
	v1 := filepath.Join(dir, "v1.csv")
	os.WriteFile(v1, []byte("127.0.0.0,127.255.255.255,64496,First Example Org\n"), 0o644)
	if _, err := asn.Import(db, []asn.Input{{Path: v1}}, asn.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	s := loopback(t, func(c *Config) {
		c.ASNDatabase = db
		c.Limits.ReportsPerMinute, c.Limits.Burst = 6000, 1000 // the test submits a report per check
	})
	c := client()
	// asnOf submits a probe report from 127.0.0.1 and returns the ASN the
	// server filed it under.
	asnOf := func() uint32 {
		t.Helper()
		code, body := do(t, c, "POST", s.url("https", "/api/v1/reports"), "application/json", strings.NewReader(probeReport))
		if code != http.StatusCreated {
			t.Fatalf("submit: %d %s", code, body)
		}
		var created struct{ ID string }
		decode(t, body, &created)
		code, body = do(t, c, "GET", s.url("admin", "/api/v1/reports/"+created.ID), "", nil)
		if code != http.StatusOK {
			t.Fatalf("get report: %d %s", code, body)
		}
		var rep Report
		decode(t, body, &rep)
		return rep.Client.ASN
	}
	if got := asnOf(); got != 64496 {
		t.Fatalf("before the update: AS%d, want AS64496", got)
	}

	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("127.0.0.0,127.255.255.255,64497,Second Example Org\n"))
	}))
	defer feed.Close()
	u := &asn.Updater{DBPath: db, URLs: []string{feed.URL + "/asn-ipv4.csv"}}
	res, err := u.Update(t.Context())
	if err != nil || !res.Changed {
		t.Fatalf("update: changed %v, %v", res.Changed, err)
	}
	// The server checks the file every asnWatchInterval: wait a bounded
	// number of intervals for the new answer.
	deadline := time.Now().Add(10 * asnWatchInterval)
	got := asnOf()
	for got != 64497 && time.Now().Before(deadline) {
		time.Sleep(asnWatchInterval / 4)
		got = asnOf()
	}
	if got != 64497 {
		t.Fatalf("after the update: AS%d, want AS64497 (the server kept the old database)", got)
	}
}
