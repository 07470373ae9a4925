package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mtuscope/mtuscope/api"
)

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	rec := connRecordFrom(r)
	if rec == nil {
		httpError(w, http.StatusInternalServerError, "no record of this connection")
		return
	}
	snap := rec.snapshot()
	out := api.Whoami{Client: rec.Client.String(), Family: familyOf(rec.Client.Addr()), ListenerMSS: rec.MSS,
		SYNMSS: rec.SYNMSS, HelloBytes: snap.HelloExpected, HelloSHA256: snap.HelloHash, HelloRecBytes: snap.HelloRecords}
	if snap.Info.Valid {
		out.TCPInfo = &snap.Info
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) capabilities(w http.ResponseWriter, r *http.Request) {
	c := api.Capabilities{Service: api.Service, Version: s.version, API: api.Version, PagePath: PagePath, PageMSS: s.cfg.PageMSS,
		WhoamiPath: api.WhoamiPath, ConnectionsPath: api.ConnectionsPath, SubmitPath: api.ReportsPath, Rungs: s.rungs, MaxDownload: len(s.download)}
	if p, err := strconv.Atoi(portOf(s.Addrs["target"])); err == nil {
		c.TargetPort = p
	}
	if s.echo != nil {
		c.EchoPort, c.EchoToken, c.EchoWire = s.echo.Port(), api.UDPTokenPath, api.EchoWire
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) udpToken(w http.ResponseWriter, r *http.Request) {
	if s.echo == nil {
		httpError(w, http.StatusNotFound, "the UDP echo is disabled")
		return
	}
	if !overTLS(r) {
		httpError(w, http.StatusForbidden, "tokens are handed out over HTTPS only")
		return
	}
	tok, exp := s.echo.token(clientAddr(r))
	writeJSON(w, http.StatusOK, api.UDPToken{Token: tok, Port: s.echo.Port(), Expires: exp.UTC()})
}

func (s *Server) connection(w http.ResponseWriter, r *http.Request) {
	sid := strings.ToLower(r.PathValue("sid"))
	if len(sid) < 16 || len(sid) > 64 || strings.Trim(sid, "0123456789abcdef") != "" {
		httpError(w, http.StatusBadRequest, "session ID: 8 to 32 bytes in hex")
		return
	}
	out := api.Observation{Match: api.MatchSessionID}
	rec := s.reg.bySession(sid)
	if rec == nil {
		// Not seen with that ID: the latest completed hello from the
		// address asking, on this listener, other than this connection.
		out.Match = api.MatchAddress
		self := connRecordFrom(r)
		local := netip.AddrPort{}
		if self != nil {
			local = self.Local
		}
		for _, c := range s.reg.since(clientAddr(r), time.Now().Add(-time.Minute)) {
			if c != self && (c.Local.Port() == local.Port()) && c.snapshot().RecordHash != "" {
				rec = c
			}
		}
	}
	if rec == nil {
		httpError(w, http.StatusNotFound, "no connection with that ClientHello session ID, nor any other from your address")
		return
	}
	snap := rec.snapshot()
	out.Client, out.SYNMSS, out.HelloBytes, out.HelloSHA256 = rec.Client.String(), rec.SYNMSS, snap.HelloRecords, snap.RecordHash
	out.Retrans, out.PMTU = snap.Info.Retransmits, snap.Info.PMTU
	writeJSON(w, http.StatusOK, out)
}
