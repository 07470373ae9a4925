package server

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Whoami is what the server saw of the connection a request arrived on:
// probe compares it with what it sent to find MSS clamping on the path and
// ClientHellos rewritten by an intercepting proxy.
type Whoami struct {
	Client        string   `json:"client"`
	Family        int      `json:"family"`
	ListenerMSS   int      `json:"listener_mss"`
	SYNMSS        int      `json:"syn_mss"`
	HelloBytes    int      `json:"hello_bytes"`
	HelloSHA256   string   `json:"hello_sha256"`
	HelloRecBytes int      `json:"hello_record_bytes"`
	TCPInfo       *TCPInfo `json:"tcp_info,omitempty"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	rec := connRecordFrom(r)
	if rec == nil {
		httpError(w, http.StatusInternalServerError, "no record of this connection")
		return
	}
	snap := rec.snapshot()
	out := Whoami{Client: rec.Client.String(), Family: familyOf(rec.Client.Addr()), ListenerMSS: rec.MSS,
		SYNMSS: rec.SYNMSS, HelloBytes: snap.HelloExpected, HelloSHA256: snap.HelloHash, HelloRecBytes: snap.HelloRecords}
	if snap.Info.Valid {
		out.TCPInfo = &snap.Info
	}
	writeJSON(w, http.StatusOK, out)
}

// Capabilities is /.well-known/mtuscope.json: what this server offers, so
// that probe can detect it and run server-assisted.
type Capabilities struct {
	Service    string `json:"service"`
	Version    string `json:"version"`
	API        int    `json:"api"`
	PagePath   string `json:"page_path"`
	PageMSS    int    `json:"page_mss"`
	WhoamiPath string `json:"whoami_path"`
	// ConnectionsPath + a ClientHello session ID in hex: Observation.
	ConnectionsPath string `json:"connections_path"`
	SubmitPath      string `json:"submit_path"`
	// TargetPort is the unclamped HTTPS listener for probe\'s own ladders.
	TargetPort  int    `json:"target_port,omitempty"`
	Rungs       []rung `json:"rungs"`
	EchoPort    int    `json:"echo_port,omitempty"`
	EchoToken   string `json:"echo_token_path,omitempty"`
	EchoWire    string `json:"echo_wire,omitempty"`
	MaxDownload int    `json:"max_download"`
}

func (s *Server) capabilities(w http.ResponseWriter, r *http.Request) {
	c := Capabilities{Service: "mtuscope", Version: s.version, API: 1, PagePath: PagePath, PageMSS: s.cfg.PageMSS,
		WhoamiPath: "/api/v1/whoami", ConnectionsPath: "/api/v1/connections/", SubmitPath: "/api/v1/reports", Rungs: s.rungs, MaxDownload: len(s.download)}
	if p, err := strconv.Atoi(portOf(s.Addrs["target"])); err == nil {
		c.TargetPort = p
	}
	if s.echo != nil {
		c.EchoPort, c.EchoToken, c.EchoWire = s.echo.Port(), "/api/v1/udp-token", "echowire/1"
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) udpToken(w http.ResponseWriter, r *http.Request) {
	if s.echo == nil {
		httpError(w, http.StatusNotFound, "the UDP echo is disabled")
		return
	}
	if r.TLS == nil {
		httpError(w, http.StatusForbidden, "tokens are handed out over HTTPS only")
		return
	}
	tok, exp := s.echo.token(clientAddr(r))
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "port": s.echo.Port(), "expires": exp.UTC().Format(time.RFC3339)})
}

// Observation is what the server saw of one earlier connection, for
// probe's server-assisted mode: found by the session ID its ClientHello
// carried, or else (Match "address") the latest connection from the
// address asking, which is what a TLS-intercepting proxy re-originates.
type Observation struct {
	Match       string `json:"match"` // "session_id" or "address"
	Client      string `json:"client"`
	SYNMSS      int    `json:"syn_mss"`
	HelloBytes  int    `json:"hello_bytes"`  // the records that carried the hello, headers included
	HelloSHA256 string `json:"hello_sha256"` // of those records
	Retrans     int    `json:"retrans"`
	PMTU        int    `json:"pmtu"`
}

func (s *Server) connection(w http.ResponseWriter, r *http.Request) {
	sid := strings.ToLower(r.PathValue("sid"))
	if len(sid) < 16 || len(sid) > 64 || strings.Trim(sid, "0123456789abcdef") != "" {
		httpError(w, http.StatusBadRequest, "session ID: 8 to 32 bytes in hex")
		return
	}
	out := Observation{Match: "session_id"}
	rec := s.reg.bySession(sid)
	if rec == nil {
		// Not seen with that ID: the latest completed hello from the
		// address asking, on this listener, other than this connection.
		out.Match = "address"
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
