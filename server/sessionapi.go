package server

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
)

// Sizes of the page's transfers and bounds of its per-step timeout.
const (
	pageDownload   = 32 << 10
	pageUpload     = 32 << 10
	minTimeoutMs   = 1500
	maxTimeoutMs   = 10000
	sessionJoinAge = 2 * time.Second // records accepted this much before the session count
)

type familyHost struct {
	Family int    `json:"family"`
	Host   string `json:"host,omitempty"`
}

type sessionResponse struct {
	ID            string       `json:"id"`
	Families      []familyHost `json:"families"`
	Rungs         []rung       `json:"rungs"`
	DownloadBytes int          `json:"download_bytes"`
	UploadBytes   int          `json:"upload_bytes"`
	MinTimeoutMs  int          `json:"min_timeout_ms"`
	MaxTimeoutMs  int          `json:"max_timeout_ms"`
}

func (s *Server) newSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RTTms int `json:"rtt_ms"`
	}
	if err := decodeJSON(w, r, 4<<10, &req); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ip := clientAddr(r)
	sess := &session{ID: newID(), IP: ip, Family: familyOf(ip), Created: time.Now(), UA: truncate(r.UserAgent(), 300)}
	if rec := connRecordFrom(r); rec != nil {
		sess.SYNMSS = rec.SYNMSS
	}
	if !s.sessions.add(sess) {
		httpError(w, http.StatusServiceUnavailable, "too many sessions in progress; try again in a minute")
		return
	}
	s.metrics.sessions.Inc()
	resp := sessionResponse{ID: sess.ID, Rungs: s.rungs, DownloadBytes: pageDownload, UploadBytes: pageUpload,
		MinTimeoutMs: minTimeoutMs, MaxTimeoutMs: maxTimeoutMs}
	if s.cfg.HostnameV4 != "" && s.cfg.HostnameV6 != "" {
		resp.Families = []familyHost{{4, s.cfg.HostnameV4}, {6, s.cfg.HostnameV6}}
	} else {
		resp.Families = []familyHost{{Family: sess.Family}}
	}
	writeJSON(w, http.StatusCreated, resp)
}

// pageResult is what the page posts when its tests are done.
type pageResult struct {
	Rungs     []BrowserRung `json:"rungs"`
	RTTms     float64       `json:"rtt_ms"`
	TimeoutMs int           `json:"timeout_ms"`
}

func (s *Server) validResult(res *pageResult) error {
	known := map[int]bool{}
	for _, r := range s.rungs {
		known[r.MSS] = true
	}
	if len(res.Rungs) == 0 {
		return fmt.Errorf("no rung results")
	}
	if len(res.Rungs) > 2*len(s.rungs) {
		return fmt.Errorf("%d rung results for %d rungs", len(res.Rungs), len(s.rungs))
	}
	step := map[string]bool{stepOK: true, stepFail: true, stepSkipped: true, "": true, "opened": true}
	for i := range res.Rungs {
		b := &res.Rungs[i]
		if !known[b.MSS] || (b.Family != 4 && b.Family != 6) {
			return fmt.Errorf("rung %d: unknown MSS %d or family %d", i, b.MSS, b.Family)
		}
		if !step[b.Hello] || !step[b.Down] || !step[b.Up] || !step[b.Probe] {
			return fmt.Errorf("rung %d: a step result is not ok, fail or skipped", i)
		}
		b.Error = truncate(b.Error, 100)
	}
	return nil
}

func (s *Server) sessionResult(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		httpError(w, http.StatusBadRequest, "malformed session ID")
		return
	}
	sess := s.sessions.get(id)
	if sess == nil {
		httpError(w, http.StatusNotFound, "no such session (it may have expired: reload the page)")
		return
	}
	if ip := clientAddr(r); ip != sess.IP {
		httpError(w, http.StatusForbidden, "this session belongs to another address")
		return
	}
	var res pageResult
	if err := decodeJSON(w, r, maxJSONBody, &res); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.validResult(&res); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess.mu.Lock()
	done := sess.reportID
	sess.mu.Unlock()
	if done != "" {
		writeJSON(w, http.StatusOK, map[string]string{"id": done, "url": "/r/" + done})
		return
	}
	rep := s.joinSession(sess, res)
	if err := s.storeReport(r.Context(), rep); err != nil {
		s.log.Error("store report", "err", err)
		httpError(w, http.StatusInternalServerError, "the report could not be stored")
		return
	}
	sess.mu.Lock()
	sess.reportID = rep.ID
	sess.mu.Unlock()
	p := rep.Primary()
	writeJSON(w, http.StatusCreated, map[string]any{"id": rep.ID, "url": "/r/" + rep.ID, "stored": true,
		"verdict": p.Diagnosis.Verdict, "direction": p.Diagnosis.Direction, "path_mtu": p.Diagnosis.PathMTU})
}

// joinSession joins the page's results with the server's records of the
// session's connections and diagnoses each family.
func (s *Server) joinSession(sess *session, res pageResult) *Report {
	since := sess.Created.Add(-sessionJoinAge)
	type key struct{ fam, mss int }
	tlsBy, downBy := map[key][]snapshot{}, map[key][]snapshot{}
	allBy := map[int][]snapshot{}
	for _, ip := range sess.addrs() {
		fam := familyOf(ip)
		for _, rec := range s.reg.since(ip, since) {
			if rec.Kind == kindPage {
				continue
			}
			snap := rec.snapshot()
			if snap.Session != "" && snap.Session != sess.ID {
				continue // another session's connection from the same address
			}
			k := key{fam, rec.MSS}
			if rec.Kind == kindDown {
				downBy[k] = append(downBy[k], snap)
			} else {
				tlsBy[k] = append(tlsBy[k], snap)
			}
			allBy[fam] = append(allBy[fam], snap)
		}
	}
	rungsBy := map[int][]RungResult{}
	var fams []int
	for _, br := range res.Rungs {
		if _, ok := rungsBy[br.Family]; !ok {
			fams = append(fams, br.Family)
		}
		k := key{br.Family, br.MSS}
		rungsBy[br.Family] = append(rungsBy[br.Family], joinRung(br.Family, br, sess.ID, tlsBy[k], downBy[k]))
	}
	if len(fams) == 0 {
		fams = []int{sess.Family}
	}
	rep := &Report{ID: newID(), Created: time.Now().UTC(), Source: "page", Version: s.version, RTTms: int(res.RTTms),
		Client: s.clientInfo(sess.IP, sess.SYNMSS, sess.UA)}
	for _, fam := range fams {
		ev := familyEvidence(fam, rungsBy[fam], allBy[fam])
		if ev.LocalMTU == 0 && fam == sess.Family && sess.SYNMSS > 0 {
			ev.LocalMTU, ev.OfferedMSS = sess.SYNMSS+diagnose.IPHeader(fam), sess.SYNMSS
		}
		rep.Results = append(rep.Results, FamilyResult{Family: fam, Evidence: ev, Diagnosis: diagnose.Diagnose(ev), Rungs: rungsBy[fam]})
	}
	return rep
}

func (s *Server) clientInfo(ip netip.Addr, synMSS int, ua string) ClientInfo {
	ci := ClientInfo{IP: ip.String(), Family: familyOf(ip), SYNMSS: synMSS, UserAgent: ua}
	res := s.asn.Lookup(ip)
	ci.ASN, ci.Org, ci.Group = res.ASN, truncate(res.Org, 200), res.Group()
	return ci
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// storeReport writes rep durably and counts it.
func (s *Server) storeReport(ctx context.Context, rep *Report) error {
	start := time.Now()
	if err := s.store.Put(ctx, toStored(rep)); err != nil {
		return err
	}
	s.metrics.storeLatency.Observe(time.Since(start).Seconds())
	if p := rep.Primary(); p != nil {
		s.metrics.reports.WithLabelValues(rep.Source, string(p.Diagnosis.Verdict)).Inc()
	}
	return nil
}
