package server

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/asn"
)

// Sizes of the page's transfers and bounds of its per-step timeout.
const (
	pageDownload = 32 << 10
	pageUpload   = 32 << 10
	minTimeoutMs = 1500
	maxTimeoutMs = 10000
)

// startRetryMs is how often a waiting page asks whether its turn came.
const startRetryMs = 700

func (s *Server) newSession(w http.ResponseWriter, r *http.Request) {
	var req api.SessionRequest
	if err := decodeJSON(w, r, 4<<10, &req); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ip := clientAddr(r)
	sess := &session{ID: newID(), IP: ip, Family: familyOf(ip), Created: time.Now(), UA: truncate(r.UserAgent(), 300)}
	sess.Host = escapeControls(truncate(strings.Trim(requestHost(r), "[]"), 255))
	sess.Plain = !overTLS(r) && s.certs.SelfSigned != ""
	if rec := connRecordFrom(r); rec != nil {
		sess.SYNMSS, sess.Local = rec.SYNMSS, rec.Local.Addr()
	}
	switch s.sessions.add(sess) {
	case tableFull:
		s.busy(w, "too many checks in progress; retrying")
		return
	case queueFull:
		s.busy(w, "too many checks from your network are waiting; retrying")
		return
	}
	s.metrics.sessions.Inc()
	resp := api.Session{ID: sess.ID, Rungs: s.rungs, DownloadBytes: pageDownload, UploadBytes: pageUpload,
		MinTimeoutMs: minTimeoutMs, MaxTimeoutMs: maxTimeoutMs, RungScheme: api.RungHTTPS}
	if sess.Plain {
		resp.RungScheme = api.RungHTTP
	}
	resp.Started, resp.Position = s.sessions.start(sess, time.Now())
	if !resp.Started {
		resp.RetryMs = startRetryMs
	}
	if s.cfg.HostnameV4 != "" && s.cfg.HostnameV6 != "" {
		resp.Families = []api.SessionFamily{{Family: 4, Host: s.cfg.HostnameV4}, {Family: 6, Host: s.cfg.HostnameV6}}
	} else {
		resp.Families = []api.SessionFamily{{Family: sess.Family}}
	}
	writeJSON(w, http.StatusCreated, resp)
}

// busy answers 503 with a Retry-After: the page shows that the server is
// busy and tries again, instead of counting anything as a result.
func (s *Server) busy(w http.ResponseWriter, msg string) {
	s.metrics.limited.WithLabelValues("busy").Inc()
	w.Header().Set("Retry-After", "2")
	httpError(w, http.StatusServiceUnavailable, msg)
}

// ownSession returns the session named in the path when the request comes
// from its address (or its address's /64); otherwise it wrote the error.
func (s *Server) ownSession(w http.ResponseWriter, r *http.Request) *session {
	id := r.PathValue("id")
	if !validID(id) {
		httpError(w, http.StatusBadRequest, "malformed session ID")
		return nil
	}
	sess := s.sessions.get(id)
	if sess == nil {
		httpError(w, http.StatusNotFound, "no such session (it may have expired: reload the page)")
		return nil
	}
	if ip := clientAddr(r); ip != sess.IP {
		httpError(w, http.StatusForbidden, "this session belongs to another address")
		return nil
	}
	return sess
}

// startSession is what a waiting page asks until its turn comes.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request) {
	sess := s.ownSession(w, r)
	if sess == nil {
		return
	}
	ok, pos := s.sessions.start(sess, time.Now())
	if !ok {
		writeJSON(w, http.StatusAccepted, api.Turn{Position: pos, RetryMs: startRetryMs})
		return
	}
	writeJSON(w, http.StatusOK, api.Turn{Started: true})
}

// validResult checks what the page posted: rungs the server has (or the
// session's refinement lent), each once, with known step results.
func (s *Server) validResult(res *api.PageResult, ref *refinement) error {
	known := map[int]bool{}
	for _, r := range s.rungs {
		known[refineKey(4, r.MSS)], known[refineKey(6, r.MSS)] = true, true
	}
	limit := 2 * len(s.rungs)
	if ref != nil {
		for k := range ref.mss {
			known[k] = true
		}
		limit += len(ref.mss)
	}
	if len(res.Rungs) == 0 {
		return fmt.Errorf("no rung results")
	}
	if len(res.Rungs) > limit {
		return fmt.Errorf("%d rung results for %d rungs", len(res.Rungs), limit)
	}
	step := map[string]bool{api.StepOK: true, api.StepFail: true, api.StepSkipped: true, "": true, api.StepOpened: true}
	type key struct{ fam, mss int }
	seen := map[key]bool{}
	for i := range res.Rungs {
		b := &res.Rungs[i]
		if !known[refineKey(b.Family, b.MSS)] || (b.Family != 4 && b.Family != 6) {
			return fmt.Errorf("rung %d: unknown MSS %d or family %d", i, b.MSS, b.Family)
		}
		if seen[key{b.Family, b.MSS}] {
			return fmt.Errorf("rung %d: MSS %d of IPv%d given twice", i, b.MSS, b.Family)
		}
		seen[key{b.Family, b.MSS}] = true
		if !step[b.Hello] || !step[b.Down] || !step[b.Up] || !step[b.Probe] {
			return fmt.Errorf("rung %d: a step result is not ok, fail or skipped", i)
		}
		b.Error = truncate(b.Error, 100)
	}
	return nil
}

func (s *Server) sessionResult(w http.ResponseWriter, r *http.Request) {
	sess := s.ownSession(w, r)
	if sess == nil {
		return
	}
	var res api.PageResult
	if err := decodeJSON(w, r, maxJSONBody, &res); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess.mu.Lock()
	ref := sess.refine
	sess.mu.Unlock()
	if err := s.validResult(&res, ref); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, _, ok := sess.window(); !ok {
		httpError(w, http.StatusConflict, "this session never started testing")
		return
	}
	// One post at a time per session: a second one waits for the first
	// and answers with its report.
	sess.postMu.Lock()
	defer sess.postMu.Unlock()
	sess.mu.Lock()
	done := sess.reportID
	sess.mu.Unlock()
	if done != "" {
		writeJSON(w, http.StatusOK, map[string]string{"id": done, "url": api.ReportPagePath + done})
		return
	}
	s.sessions.release(sess, time.Now())
	if alert, n := s.certRefused(sess, res.Rungs); n > 0 {
		// Not a network result: the browser would not talk to the rungs.
		if ref != nil {
			ref.close(s)
		}
		s.metrics.certRefused.Inc()
		s.log.Warn("a browser refused the server's certificate: no result", "session", sess.ID, "client", sess.IP,
			"alert", alert, "connections", n, "self_signed", s.certs.SelfSigned != "", "page_over_tls", !sess.Plain)
		writeJSON(w, http.StatusUnprocessableEntity, api.CertificateRefused{CertificateUntrusted: true, Alert: alert,
			Error: certRefusedText(alert, n, s.certs.SelfSigned != "")})
		return
	}
	from, _, _ := sess.window()
	s.log.Debug("session result", "session", sess.ID, "since_start", time.Since(from), "since_created", time.Since(sess.Created),
		"rtt_ms", res.RTTms, "timeout_ms", res.TimeoutMs)
	rep := s.joinSession(sess, res)
	if ref != nil {
		ref.close(s)
	}
	if err := s.storeReport(r.Context(), rep); err != nil {
		s.log.Error("store report", "err", err)
		httpError(w, http.StatusInternalServerError, "the report could not be stored")
		return
	}
	sess.mu.Lock()
	sess.reportID = rep.ID
	sess.mu.Unlock()
	writeJSON(w, http.StatusCreated, submitted(rep))
}

// joinSession makes the session's report: the join (join.go) of the
// page's results with the connections the server saw, diagnosed, with
// the report's ID and time and the client's ASN.
func (s *Server) joinSession(sess *session, res api.PageResult) *Report {
	sp, seen := s.joinInput(sess)
	rep := &Report{ID: newID(), Created: time.Now().UTC(), Source: "page", Version: s.version, RTTms: int(res.RTTms),
		Client: s.clientInfo(sess.IP, sess.SYNMSS, sess.UA)}
	if sess.Local.IsValid() || sess.Host != "" {
		rep.Server = &ServerInfo{Name: sess.Host, Family: sess.Family}
		if sess.Local.IsValid() {
			rep.Server.Address = sess.Local.String()
		}
	}
	for _, f := range joinFamilies(sp, res, selectConns(sp, seen)) {
		rep.Results = append(rep.Results, f.result())
	}
	return rep
}

// joinInput reads what the join takes of sess: its turn, and a snapshot
// (TCP_INFO read now) of every connection from its addresses accepted
// since the turn began.
func (s *Server) joinInput(sess *session) (joinSpec, []addrConns) {
	from, to, _ := sess.window()
	sp := joinSpec{ID: sess.ID, Addr: sess.IP, Family: sess.Family, SYNMSS: sess.SYNMSS, Plain: sess.Plain, From: from, To: to}
	var seen []addrConns
	for _, ip := range sess.addrs() {
		a := addrConns{Addr: ip}
		a.Claimed, _ = sess.claimedSince(ip)
		for _, rec := range s.reg.since(ip, from) {
			a.Conns = append(a.Conns, rec.snapshot())
		}
		seen = append(seen, a)
	}
	return sp, seen
}

func (s *Server) clientInfo(ip netip.Addr, synMSS int, ua string) ClientInfo {
	ci := ClientInfo{IP: ip.String(), Family: familyOf(ip), SYNMSS: synMSS, UserAgent: ua}
	res := s.asn.Lookup(ip)
	ci.ASN, ci.Org, ci.Group = res.ASN, truncate(res.Org, 200), res.Group()
	if ci.ASN != 0 {
		ci.ASNAttribution = s.asnAttribution()
	}
	return ci
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// asnAttribution is the credit line of the ASN database in use.
func (s *Server) asnAttribution() string {
	if r, ok := s.asn.(*asn.Resolver); ok {
		if t := r.Table(); t != nil {
			return t.Meta().Attribution()
		}
	}
	return ""
}

// hasASN reports whether the server has an ASN database loaded.
func (s *Server) hasASN() bool {
	r, ok := s.asn.(*asn.Resolver)
	return ok && r.Table() != nil
}
