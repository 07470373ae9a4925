package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/store"
)

// toStored is what the store keeps of rep: the body as it is (escaped
// when it is shown: loadReport), the columns lists show, and the network
// the per-address bound counts it against.
func toStored(rep *Report) store.Report {
	body, _ := json.Marshal(rep)
	sr := store.Report{ID: rep.ID, Created: rep.Created, Source: rep.Source, ClientIP: rep.Client.IP,
		Family: rep.Client.Family, ASN: rep.Client.ASN, Org: escapeControls(rep.Client.Org), Body: body}
	if ip, err := netip.ParseAddr(rep.Client.IP); err == nil {
		sr.Network = addrKey(ip).String()
	}
	if p := rep.Primary(); p != nil {
		sr.Verdict, sr.Direction, sr.PathMTU = string(p.Diagnosis.Verdict), string(p.Diagnosis.Direction), p.Diagnosis.PathMTU
	}
	return sr
}

// loadReport fetches and decodes a report; ok is false when it wrote an error.
func (s *Server) loadReport(w http.ResponseWriter, r *http.Request, id string) (*Report, bool) {
	if !validID(id) {
		httpError(w, http.StatusNotFound, "no such report")
		return nil, false
	}
	sr, err := s.store.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		httpError(w, http.StatusNotFound, "no such report")
		return nil, false
	}
	if err != nil {
		s.log.Error("get report", "id", id, "err", err)
		httpError(w, http.StatusInternalServerError, "the report could not be read")
		return nil, false
	}
	var rep Report
	if err := json.Unmarshal(sr.Body, &rep); err != nil {
		httpError(w, http.StatusInternalServerError, "the stored report is damaged")
		return nil, false
	}
	scrubStrings(&rep) // every string a client submitted, escaped for every format
	return &rep, true
}

// storeReport writes rep durably and counts it. Its strings are stored as
// submitted: escaping them (\u202e for three bytes) grew a report up to
// fourfold on disk; loadReport escapes them for every format instead.
func (s *Server) storeReport(ctx context.Context, rep *Report) error {
	start := time.Now()
	if err := s.store.Put(ctx, toStored(rep)); err != nil {
		s.metrics.storeErrors.Inc()
		return err
	}
	s.metrics.storeLatency.Observe(time.Since(start).Seconds())
	if p := rep.Primary(); p != nil {
		s.metrics.reports.WithLabelValues(rep.Source, string(p.Diagnosis.Verdict)).Inc()
	}
	return nil
}

// Bounds of what a probe's submission may carry: its free text (error
// texts, details, reasons for skipped tests; the diagnosis quotes some of
// them again) and the stored report.
const (
	maxSubmittedString = 1 << 10
	maxSkipped         = 32
	maxStoredReport    = store.MaxReportBytes
)

// checkEvidence refuses evidence whose strings exceed the bounds: the
// probe writes short ones.
func checkEvidence(ev *diagnose.Evidence) error {
	if len(ev.Skipped) > maxSkipped {
		return fmt.Errorf("evidence: %d skipped tests, at most %d", len(ev.Skipped), maxSkipped)
	}
	if n := longestString(reflect.ValueOf(ev), 0); n > maxSubmittedString {
		return fmt.Errorf("evidence: a string of %d bytes, at most %d each", n, maxSubmittedString)
	}
	return nil
}

// longestString returns the length of the longest string reachable from v.
func longestString(v reflect.Value, depth int) int {
	if depth > 16 {
		return 0
	}
	n := 0
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			n = longestString(v.Elem(), depth+1)
		}
	case reflect.String:
		n = v.Len()
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				n = max(n, longestString(v.Field(i), depth+1))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			n = max(n, longestString(v.Index(i), depth+1))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			n = max(n, longestString(k, depth+1), longestString(v.MapIndex(k), depth+1))
		}
	}
	return n
}

// reportPage serves /r/ID (HTML), /r/ID.txt and /r/ID.json: public to
// whoever has the unguessable ID.
func (s *Server) reportPage(w http.ResponseWriter, r *http.Request) {
	id, ext := r.PathValue("id"), ""
	if i := strings.IndexByte(id, '.'); i >= 0 {
		id, ext = id[:i], id[i:]
	}
	if ext != "" && ext != ".txt" && ext != ".json" {
		httpError(w, http.StatusNotFound, "no such report")
		return
	}
	rep, ok := s.loadReport(w, r, id)
	if !ok {
		return
	}
	if ext == ".json" {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		writeJSON(w, http.StatusOK, rep)
		return
	}
	v, err := s.tmpl.view(rep, baseURL(r), s.probeCommands(r.Host)...)
	if err != nil {
		s.log.Error("render report", "id", id, "err", err)
		httpError(w, http.StatusInternalServerError, "the report could not be rendered")
		return
	}
	s.pageHeaders(w, r)
	w.Header().Set("Cache-Control", "no-store")
	if ext == ".txt" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(v.Text))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.tmpl.report.Execute(w, v); err != nil {
		s.log.Debug("render report", "id", id, "err", err)
	}
}

// baseURL is the scheme and host the request came to, for full links.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + escapeControls(truncate(r.Host, 300))
}

func (s *Server) submitReport(w http.ResponseWriter, r *http.Request) {
	var sub api.Submission
	if err := decodeJSON(w, r, maxJSONBody, &sub); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(sub.Evidence) == 0 || len(sub.Evidence) > 2 {
		httpError(w, http.StatusBadRequest, "evidence: one entry per family, one or two")
		return
	}
	for _, ev := range sub.Evidence {
		if ev.Family != 4 && ev.Family != 6 {
			httpError(w, http.StatusBadRequest, "evidence: family must be 4 or 6")
			return
		}
		if len(ev.Segments)+len(ev.Hellos)+len(ev.Datagrams)+len(ev.ICMPSignals)+len(ev.Skipped)+len(ev.Variants) > 1000 {
			httpError(w, http.StatusBadRequest, "evidence: more than 1000 tests")
			return
		}
		if err := checkEvidence(&ev); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	ip := clientAddr(r)
	syn := 0
	if rec := connRecordFrom(r); rec != nil {
		syn = rec.SYNMSS
	}
	rep := &Report{ID: newID(), Created: time.Now().UTC(), Source: "probe", Version: s.version,
		Client: s.clientInfo(ip, syn, truncate(r.UserAgent(), 300)), Target: truncate(sub.Target, 300)}
	for _, ev := range sub.Evidence {
		rep.Results = append(rep.Results, FamilyResult{Family: ev.Family, Evidence: ev, Diagnosis: diagnose.Diagnose(ev)})
	}
	if err := s.storeReport(r.Context(), rep); err != nil {
		if errors.Is(err, store.ErrTooLarge) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the report is larger than the server stores (%d KiB compressed)", maxStoredReport>>10))
			return
		}
		s.log.Error("store report", "err", err)
		httpError(w, http.StatusInternalServerError, "the report could not be stored")
		return
	}
	writeJSON(w, http.StatusCreated, submitted(rep))
}

// parseFilter reads ?asn=&verdict=&since=&until=&limit=.
func parseFilter(r *http.Request) (store.Filter, error) {
	q := r.URL.Query()
	var f store.Filter
	if v := q.Get("asn"); v != "" {
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(v), "AS"), 10, 32)
		if err != nil {
			return f, errors.New("asn: want a number such as 64496 or AS64496")
		}
		f.ASN = uint32(n)
	}
	if v := q.Get("verdict"); v != "" {
		if verdictTitles[diagnose.Verdict(v)] == "" {
			return f, errors.New("verdict: not one of mtuscope's verdicts")
		}
		f.Verdict = v
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, errors.New(name + ": want an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, errors.New("limit: want 1 to 1000")
		}
		f.Limit = n
	}
	return f, nil
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := s.store.List(r.Context(), f)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "the reports could not be read")
		return
	}
	out := make([]map[string]any, 0, len(l))
	for _, sr := range l {
		out = append(out, map[string]any{"id": sr.ID, "created": sr.Created, "source": sr.Source, "client_ip": sr.ClientIP,
			"family": sr.Family, "asn": sr.ASN, "org": sr.Org, "verdict": sr.Verdict, "direction": sr.Direction,
			"path_mtu": sr.PathMTU, "url": api.ReportPagePath + sr.ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": out, "count": len(out)})
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	if rep, ok := s.loadReport(w, r, r.PathValue("id")); ok {
		writeJSON(w, http.StatusOK, rep)
	}
}

func (s *Server) operatorPage(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	l, err := s.store.List(r.Context(), f)
	if err == nil {
		var sum []store.ASNSummary
		if sum, err = s.store.Summary(r.Context(), store.Filter{Since: f.Since, Until: f.Until, Verdict: f.Verdict, ASN: f.ASN}); err == nil {
			var verdicts []string
			for _, v := range diagnose.Verdicts() {
				verdicts = append(verdicts, string(v))
			}
			since := ""
			if !f.Since.IsZero() {
				since = f.Since.Format(time.RFC3339)
			}
			s.pageHeaders(w, r)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			err = s.tmpl.operator.Execute(w, map[string]any{"Filter": f, "Reports": l, "Summary": sum, "Verdicts": verdicts, "Since": since,
				"NoASN": !s.hasASN(), "Attribution": s.asnAttribution()})
			if err != nil {
				s.log.Debug("render operator view", "err", err)
			}
			return
		}
	}
	httpError(w, http.StatusInternalServerError, "the reports could not be read")
}

// submitted is the answer to a stored report: where it is and its first
// family's diagnosis.
func submitted(rep *Report) api.Submitted {
	p := rep.Primary()
	return api.Submitted{ID: rep.ID, URL: api.ReportPagePath + rep.ID, Stored: true,
		Verdict: p.Diagnosis.Verdict, Direction: p.Diagnosis.Direction, PathMTU: p.Diagnosis.PathMTU}
}
