package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/craftpcap"
)

// TestTruncatedCapture cuts a capture inside its last record, as a
// tcpdump killed while writing leaves it, plain and gzipped: analyze and
// watch --read analyse it up to the cut, say so on stderr with the offset
// (analyze --json and watch --json carry the warning too), and exit as
// for the complete file.
func TestTruncatedCapture(t *testing.T) {
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.pcap")
	w := craftpcap.NewWriter(t, whole)
	start := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	server := [4]byte{203, 0, 113, 10}
	hello := []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}
	for i := range 20 {
		c := [4]byte{192, 0, 2, byte(10 + i)}
		ts := start.Add(time.Duration(i) * time.Second)
		port := uint16(40000 + i)
		w.TCP(t, ts, c, server, port, 443, 1000, 0, craftpcap.FlagSYN, nil)
		w.TCP(t, ts.Add(time.Millisecond), server, c, 443, port, 5000, 1001, craftpcap.FlagSYN|craftpcap.FlagACK, nil)
		w.TCP(t, ts.Add(2*time.Millisecond), c, server, port, 443, 1001, 5001, craftpcap.FlagACK, nil)
		w.TCP(t, ts.Add(3*time.Millisecond), c, server, port, 443, 1001, 5001, craftpcap.FlagACK|craftpcap.FlagPSH, hello)
	}
	w.Close(t)
	data, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	// The offset of the last record, the one the cut falls in.
	lastRecord := 24
	for next := 24; next < len(data); next += 16 + int(binary.LittleEndian.Uint32(data[next+8:])) {
		lastRecord = next
	}
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, data[:len(data)-5], 0o644)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(data)
	zw.Close()
	cutGz := filepath.Join(dir, "cut.pcap.gz")
	os.WriteFile(cutGz, zb.Bytes()[:zb.Len()-20], 0o644)

	asnDB := filepath.Join(dir, "asn.db")
	watchArgs := func(file string, extra ...string) []string {
		return append([]string{"watch", "--read", file, "--admin", "", "--asn-db", asnDB}, extra...)
	}
	wantAnalyze, _, _ := run(t, "analyze", whole)
	wantWatch, _, _ := run(t, watchArgs(whole)...)
	for _, tc := range []struct {
		name, file string
		offset     int // -1: somewhere in the file
	}{{"plain", cut, lastRecord}, {"gzipped", cutGz, -1}} {
		t.Run(tc.name, func(t *testing.T) {
			warned := func(what, stderr string) {
				t.Helper()
				at := "at byte "
				if tc.offset >= 0 {
					at = fmt.Sprintf("at byte %d:", tc.offset)
				}
				if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, tc.file) || !strings.Contains(stderr, at) ||
					!strings.Contains(stderr, "truncated capture") {
					t.Errorf("%s: stderr %q: want a warning naming the file, the cut (%q) and the truncation", what, stderr, at)
				}
			}
			code, out, errb := run(t, "analyze", tc.file)
			if code != wantAnalyze || !strings.Contains(out, "verdict") {
				t.Errorf("analyze: exit %d (complete file %d), stdout %q", code, wantAnalyze, out)
			}
			warned("analyze", errb)
			code, out, errb = run(t, "analyze", "--json", tc.file)
			var doc struct {
				Warnings []string `json:"warnings"`
				Stats    map[string]struct {
					Packets     int    `json:"packets"`
					TruncatedAt *int64 `json:"truncated_at"`
				} `json:"stats"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil || code != wantAnalyze {
				t.Fatalf("analyze --json: exit %d, %v: %s", code, err, out)
			}
			st := doc.Stats["capture"]
			if len(doc.Warnings) != 1 || st.TruncatedAt == nil || tc.offset >= 0 && *st.TruncatedAt != int64(tc.offset) || st.Packets < 40 {
				t.Errorf("analyze --json: warnings %q, stats %+v: want the warning, the offset and the packets before the cut", doc.Warnings, st)
			}
			warned("analyze --json", errb)
			code, out, errb = run(t, watchArgs(tc.file)...)
			if code != wantWatch || !strings.Contains(out, "192.0.2.0/24") {
				t.Errorf("watch --read: exit %d (complete file %d), stdout %q", code, wantWatch, out)
			}
			warned("watch --read", errb)
			_, out, _ = run(t, watchArgs(tc.file, "--json")...)
			var wdoc WatchDocument
			if err := json.Unmarshal([]byte(out), &wdoc); err != nil || len(wdoc.Warnings) != 1 {
				t.Errorf("watch --json: %v, warnings %q", err, wdoc.Warnings)
			}
		})
	}
}
