package server

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// storedBytes returns the bytes of the body stored for report id, read
// straight from the database file.
func storedBytes(t *testing.T, s *Server, id string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.cfg.DataDir, "reports.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT length(body) FROM reports WHERE id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// jsonLen is the length of v in JSON as submit sends it.
func jsonLen(v any) int {
	b, _ := json.Marshal(v)
	return len(bytes.ReplaceAll(b, []byte(`\ufffd`), []byte{0xff}))
}

// hostileText is about n bytes (as sent in JSON) of text of one kind.
func hostileText(kind string, rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		switch kind {
		case "bidi":
			b.WriteString("\u202e\u2066")
		case "c1":
			b.WriteRune(rune(0x80 + rng.IntN(0x20)))
		case "invalid utf-8": // 3 bytes each once decoded (U+FFFD)
			b.WriteByte(0xff)
			n -= 2
		case "controls": // 6 bytes each in JSON (\u001b)
			b.WriteByte(byte(1 + rng.IntN(0x1f)))
			n -= 5
		case "random":
			b.WriteByte(byte(0x20 + rng.IntN(0x5f)))
		}
	}
	return b.String()
}

// TestReportStorageBytes: what a report costs on disk is about what was
// sent, whatever its strings hold: no escaping on the way in (a 241 KB
// body of bidirectional overrides was stored as 1.11 MB), the body
// compressed, and the free text the diagnosis repeats bounded.
func TestReportStorageBytes(t *testing.T) {
	t.Parallel()
	s := loopback(t, func(c *Config) { c.Limits.Burst = 1000 })
	c := client()
	rng := rand.New(rand.NewPCG(1, 2))
	submit := func(sub api.Submission) (int, int, string) {
		body, _ := json.Marshal(sub)
		// Raw invalid UTF-8 in the body, not the \ufffd Marshal writes.
		body = bytes.ReplaceAll(body, []byte(`\ufffd`), []byte{0xff})
		code, out := do(t, c, "POST", s.url("https", api.ReportsPath), "application/json", strings.NewReader(string(body)))
		if code != http.StatusCreated {
			return len(body), 0, out
		}
		var res struct{ ID string }
		decode(t, out, &res)
		return len(body), storedBytes(t, s, res.ID), ""
	}
	for _, kind := range []string{"bidi", "c1", "invalid utf-8", "controls", "random"} {
		// The most text a submission may carry: every string at its bound,
		// the rest of the body in test details.
		ev := diagnose.Evidence{Family: 4, Connected: true, ConnectError: hostileText(kind, rng, 1000)}
		for i := 0; i < maxSkipped; i++ {
			ev.Skipped = append(ev.Skipped, hostileText(kind, rng, 1000))
		}
		for i, n := 0, jsonLen(ev); i < 900 && n < 190<<10; i++ {
			sg := diagnose.SegmentTest{UpSize: 1300 + i, DownSize: 1300 + i, Up: diagnose.Passed,
				Down: diagnose.Passed, Outcome: diagnose.Completed, Detail: hostileText(kind, rng, 1000)}
			ev.Segments = append(ev.Segments, sg)
			n += jsonLen(sg) + 1
		}
		sent, stored, refused := submit(api.Submission{Target: "x", Evidence: []diagnose.Evidence{ev}})
		t.Logf("%-13s %7d bytes sent, %7d stored (%.2fx)%s", kind, sent, stored, float64(stored)/float64(sent), refused)
		if refused != "" {
			t.Errorf("%s: refused: %s", kind, refused)
			continue
		}
		if stored > sent || stored > maxStoredReport {
			t.Errorf("%s: %d bytes stored for %d sent, want at most the bytes sent and %d", kind, stored, sent, maxStoredReport)
		}
	}
	// Longer strings, or more of them than the probe ever sends, are
	// refused with the reason.
	for name, ev := range map[string]diagnose.Evidence{
		"a long string":  {Family: 4, ConnectError: strings.Repeat("x", maxSubmittedString+1)},
		"too many skips": {Family: 4, Skipped: make([]string, maxSkipped+1)},
		"a long detail":  {Family: 4, Segments: []diagnose.SegmentTest{{Detail: strings.Repeat("x", maxSubmittedString+1)}}},
		"a long outcome": {Family: 4, Segments: []diagnose.SegmentTest{{Outcome: diagnose.Outcome(strings.Repeat("x", maxSubmittedString+1))}}},
	} {
		body, _ := json.Marshal(api.Submission{Target: "x", Evidence: []diagnose.Evidence{ev}})
		code, out := do(t, c, "POST", s.url("https", api.ReportsPath), "application/json", strings.NewReader(string(body)))
		if code != http.StatusBadRequest || !strings.Contains(out, "evidence") {
			t.Errorf("%s: %d %s, want 400 naming the evidence", name, code, out)
		}
	}
}

// TestReportRetentionPerAddress: the configured bound per address holds
// for what one address submits, its oldest reports going first, and
// another address's reports stay.
func TestReportRetentionPerAddress(t *testing.T) {
	t.Parallel()
	s := loopback(t, func(c *Config) { c.Limits.Burst, c.Reports.MaxAddressMB = 1000, 1 })
	c := client()
	rng := rand.New(rand.NewPCG(7, 8))
	submit := func(h http.Handler, from string) string {
		ev := diagnose.Evidence{Family: 4, Connected: true}
		for i := 0; i < 180; i++ {
			ev.Segments = append(ev.Segments, diagnose.SegmentTest{UpSize: 1300 + i, DownSize: 1300 + i, Up: diagnose.Passed,
				Down: diagnose.Passed, Outcome: diagnose.Completed, Detail: hostileText("random", rng, 1000)})
		}
		body, _ := json.Marshal(api.Submission{Target: "x", Evidence: []diagnose.Evidence{ev}})
		if h == nil {
			code, out := do(t, c, "POST", s.url("https", api.ReportsPath), "application/json", bytes.NewReader(body))
			if code != http.StatusCreated {
				t.Fatalf("submit: %d %s", code, out)
			}
			var res struct{ ID string }
			decode(t, out, &res)
			return res.ID
		}
		req := httptest.NewRequest("POST", api.ReportsPath, bytes.NewReader(body))
		req.RemoteAddr = from
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusCreated {
			t.Fatalf("submit from %s: %d %s", from, w.Code, w.Body)
		}
		return ""
	}
	submit(s.pageHandler(false), "[2001:db8:7::1]:1000")
	var ids []string
	for i := 0; i < 12; i++ {
		ids = append(ids, submit(nil, ""))
	}
	u, err := s.store.Usage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, id := range ids {
		if code, _ := do(t, c, "GET", s.url("https", "/r/"+id+".json"), "", nil); code == 200 {
			kept++
		}
	}
	t.Logf("12 reports of about 166 KB stored each from one address with a bound of 1 MiB: %d kept; all addresses: %d reports, %d bytes",
		kept, u.Reports, u.Bytes)
	if kept == 0 || kept == len(ids) || u.Bytes > 1<<20+200<<10 {
		t.Errorf("%d of %d kept, %d bytes in all, want the address's newest within 1 MiB and the other address's one", kept, len(ids), u.Bytes)
	}
	if code, _ := do(t, c, "GET", s.url("https", "/r/"+ids[len(ids)-1]+".json"), "", nil); code != 200 {
		t.Error("the newest report went")
	}
	if u.Reports != kept+1 {
		t.Errorf("%d reports in all, want %d of the address and the other address's one", u.Reports, kept)
	}
}
