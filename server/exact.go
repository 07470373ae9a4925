package server

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/sockopt"
)

// The exact-size service lets a client that controls no socket option
// (probe's portable mode: Windows, macOS, --portable) test one packet size
// at a time in either direction, over plain HTTP on a rung listener (TLS
// records would add their own bytes):
//
//   - GET /t/exact, any padding in the query: the server answers what it
//     saw of the connection (api.ExactInfo). Its rcv_mss is the largest
//     segment that arrived, so a request written in one piece tells the
//     client the size of the packet that crossed upstream.
//   - GET /t/exact?size=N: the server writes, in one write on the idle
//     connection with TCP_NODELAY, the payload of one segment making an IP
//     packet of exactly N bytes, then holds the connection until the client
//     closes it. Whether those bytes arrive is the downstream test.

// exactHold bounds how long a connection of the service stays open after
// its segment was written.
const exactHold = 10 * time.Second

func (s *Server) rungExact(w http.ResponseWriter, r *http.Request) {
	if overTLS(r) {
		httpError(w, http.StatusBadRequest, "the exact-size service speaks plain HTTP only (TLS adds bytes to every record)")
		return
	}
	rec := connRecordFrom(r)
	if rec == nil {
		httpError(w, http.StatusInternalServerError, "no record of this connection")
		return
	}
	ti, err := sockopt.ReadTCPInfo(rec.raw)
	if err != nil || ti.SndMSS <= 0 {
		httpError(w, http.StatusInternalServerError, "no TCP_INFO for this connection")
		return
	}
	fam := familyOf(rec.Client.Addr())
	hdr, opt := diagnose.IPHeader(fam), ti.OptionBytes()
	info := api.ExactInfo{Family: fam, SYNMSS: rec.SYNMSS, SndMSS: ti.SndMSS, RcvMSS: ti.RcvMSS, Timestamps: ti.Timestamps,
		MaxSize: ti.SndMSS + hdr + opt}
	q := r.URL.Query().Get("size")
	if q == "" {
		writeJSON(w, http.StatusOK, info)
		return
	}
	size, err := strconv.Atoi(q)
	payload := size - hdr - opt
	if err != nil || payload <= 0 || payload > ti.SndMSS {
		httpError(w, http.StatusBadRequest, "size: want an IP packet size from "+strconv.Itoa(hdr+opt+1)+
			" to "+strconv.Itoa(info.MaxSize)+" bytes on this connection")
		return
	}
	// Held connections share the server-first probes' bound.
	select {
	case s.downSem <- struct{}{}:
		defer func() { <-s.downSem }()
	default:
		httpError(w, http.StatusServiceUnavailable, "too many exact-size tests at once")
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "cannot take over the connection")
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(exactHold))
	conn.Write(make([]byte, payload))
	io.Copy(io.Discard, io.LimitReader(conn, 4096))
}
