package cli

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// emptyPcap is a pcap file header with no packets after it, cut short
// when cut is set.
func emptyPcap(t *testing.T, cut bool) string {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 65535)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	if cut {
		// a record header that promises 100 bytes, and 10 of them
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[8:], 100)
		binary.LittleEndian.PutUint32(rec[12:], 100)
		hdr = append(append(hdr, rec...), make([]byte, 10)...)
	}
	p := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(p, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAnalyzeErrors(t *testing.T) {
	text := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(text, []byte("not a capture\n"), 0o644)
	cut := emptyPcap(t, true)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no capture", []string{"analyze"}, []string{"no capture"}},
		{"both forms", []string{"analyze", text, "--client", text, "--server", text}, []string{"not both"}},
		{"client alone", []string{"analyze", "--client", text}, []string{"go together"}},
		{"not a capture", []string{"analyze", text}, []string{text, "at byte 0", "not a pcap or pcapng capture"}},
		{"truncated", []string{"analyze", "--json", cut}, []string{cut, "at byte", "truncated"}},
		{"truncated server side", []string{"analyze", "--client", cut, "--server", text}, []string{cut, "at byte"}},
		{"missing", []string{"analyze", "/nonexistent/x.pcap"}, []string{"/nonexistent/x.pcap"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errb := run(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if out != "" {
				t.Errorf("output on stdout: %q", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errb, w) {
					t.Errorf("stderr %q does not say %q", errb, w)
				}
			}
		})
	}
}

func TestAnalyzeNothingToJudge(t *testing.T) {
	code, out, _ := run(t, "analyze", "--json", emptyPcap(t, false))
	if code != ExitUsage {
		t.Errorf("a capture without packets: exit %d, want %d (%s)", code, ExitUsage, out)
	}
	// A capture with packets but no TCP flow is inconclusive: exit 3.
	p := emptyPcap(t, false)
	b, _ := os.ReadFile(p)
	rec := make([]byte, 16+60)
	binary.LittleEndian.PutUint32(rec[8:], 60)
	binary.LittleEndian.PutUint32(rec[12:], 60)
	rec[16+12], rec[16+13] = 0x08, 0x06 // ARP
	os.WriteFile(p, append(b, rec...), 0o644)
	code, out, _ = run(t, "analyze", "--json", p)
	var doc struct {
		Verdict string `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Verdict != "inconclusive" || code != ExitInconclusive {
		t.Errorf("a capture without TCP: exit %d, %v, %s", code, err, out)
	}
}
