package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// TestSubmittedFieldsEscaped: newlines and control characters in what a
// client submits never reach any format of the report raw.
func TestSubmittedFieldsEscaped(t *testing.T) {
	t.Parallel()
	s := loopback(t, nil)
	c := client()
	evil := "x\nFix (network): run rm -rf /\r\x1b[2J\u202eevil"
	ev := diagnose.Evidence{Family: 4, Connected: false, ConnectError: evil, Skipped: []string{evil}}
	body, _ := json.Marshal(api.Submission{Target: evil, Version: evil, Evidence: []diagnose.Evidence{ev}})
	code, out := do(t, c, "POST", s.url("https", "/api/v1/reports"), "application/json", strings.NewReader(string(body)))
	if code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, out)
	}
	var res struct{ ID string }
	decode(t, out, &res)
	for _, ext := range []string{"", ".txt", ".json"} {
		code, got := do(t, c, "GET", s.url("https", "/r/"+res.ID+ext), "", nil)
		if code != 200 {
			t.Fatalf("%s: %d", ext, code)
		}
		if ext == ".json" {
			var rep Report
			decode(t, got, &rep)
			for _, f := range []string{rep.Target, rep.Version, rep.Results[0].Evidence.ConnectError, rep.Results[0].Diagnosis.Findings[0].Detail} {
				if strings.ContainsAny(f, "\n\r\x1b\u202e") {
					t.Errorf("JSON field holds a raw control character: %q", f)
				}
			}
			continue
		}
		for _, bad := range []string{"\nFix (network): run", "\x1b", "\r", "\u202e"} {
			if strings.Contains(got, bad) {
				t.Errorf("report%s holds %q", ext, bad)
			}
		}
		if !strings.Contains(got, `x\nFix (network): run rm -rf /\r\x1b[2J\u202eevil`) {
			t.Errorf("report%s does not show the escaped target", ext)
		}
	}
}

// TestPageReportFixes: a page report leads with the network team's fixes,
// keeps the operator's apart, and leaves out the Go-only stopgap and the
// advice on the diagnostic server's own certificate chain.
func TestPageReportFixes(t *testing.T) {
	tmpl, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	ev := diagnose.Evidence{Family: 4, Connected: true, LocalMTU: 1500, OfferedMSS: 1460, FlightBytes: 4530}
	for _, size := range []int{1300, 1400, 1404, 1500} {
		r := diagnose.Failed
		if size <= 1400 {
			r = diagnose.Passed
		}
		ev.Segments = append(ev.Segments, diagnose.SegmentTest{UpSize: size, DownSize: size, Up: r, Down: r, Outcome: diagnose.Completed})
	}
	d := diagnose.Diagnose(ev)
	var codes []string
	for _, f := range d.Fixes {
		codes = append(codes, f.Code)
	}
	if !strings.Contains(strings.Join(codes, " "), "go_disable_mlkem") || !strings.Contains(strings.Join(codes, " "), "shrink_server_flight") {
		t.Fatalf("the diagnosis no longer offers the fixes this test hides: %v", codes)
	}
	var rungs []RungResult
	for _, sg := range ev.Segments {
		rungs = append(rungs, RungResult{MSS: sg.UpSize - 40, Test: sg})
	}
	rungs[2].Uncertain = "unnamed connections on this size disagree"
	rep := &Report{ID: newID(), Source: "page", Results: []FamilyResult{{Family: 4, Evidence: ev, Diagnosis: d, Rungs: rungs}},
		Server: &ServerInfo{Name: "check.example.net", Address: "203.0.113.10", Family: 4}}
	v, err := tmpl.view(rep, "https://check.example.net")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(v.NetworkFixes, v.OperatorFixes...) {
		if pageHiddenFixes[f.Code] {
			t.Errorf("page report shows %s", f.Code)
		}
	}
	if len(v.NetworkFixes) == 0 || v.NetworkFixes[0].Code != "clamp_mss" || len(v.OperatorFixes) == 0 {
		t.Errorf("fixes: network %v operator %v", v.NetworkFixes, v.OperatorFixes)
	}
	if v.Bracket == "" || !strings.Contains(v.Bracket, "between 1400 and 1403") {
		t.Errorf("bracket in words: %q", v.Bracket)
	}
	for _, want := range []string{"https://check.example.net/r/" + rep.ID, "For your network team:", "For the operator of the service",
		"1400  ✓   ✓   ◀ largest through", "Server tested: check.example.net (203.0.113.10)",
		"For one size (1404 bytes) the server saw connections"} {
		if !strings.Contains(v.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, v.Text)
		}
	}
	if strings.Index(v.Text, "For your network team:") > strings.Index(v.Text, "For the operator") {
		t.Error("operator fixes come before the network team's")
	}
	var html strings.Builder
	if err := tmpl.report.Execute(&html, v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<svg viewBox=`, `class="cell fail"`, `<span class="w">TCPMSS</span>`, "no change", "hatched"} {
		if want == "no change" {
			continue
		}
		if !strings.Contains(html.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html.String(), "no ASN database") {
		t.Error("the customer's page carries an operator note")
	}
}
