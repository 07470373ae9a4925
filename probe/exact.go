package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// Kinds of the portable mode's tests against the exact-size service.
const (
	KindExactUp   = "exact_up"   // one request segment of a set size: upstream
	KindExactDown = "exact_down" // one answer segment of a set size: downstream
)

// ExactService is a cooperating server's exact-size service (mtuscope
// serve's api.RungExactPath on a rung listener, plain HTTP): one segment of
// a size the client names, in either direction, with no socket option on
// the client. An Assistant that offers it implements this too.
type ExactService interface {
	// ExactService returns the service's listener: host ("" for the
	// probe's target address), port, and the MSS it is clamped to (0 for
	// none), which caps the sizes it can test.
	ExactService() (host string, port, mss int, ok bool)
}

// exactRequest writes req in one write on a fresh connection to addr and
// reads the answer: want bytes of raw payload (want > 0), or an HTTP
// response whose JSON body goes into info (want == 0).
func (r *runner) exactRequest(ctx context.Context, addr string, req []byte, want int, info *api.ExactInfo) error {
	conn, err := r.dialAddr(ctx, 0, addr)
	if err != nil {
		return dialError{err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(r.hsTimeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if n, err := conn.Write(req); err != nil || n != len(req) {
		return fmt.Errorf("write: %w", err)
	}
	if want > 0 {
		buf := make([]byte, want)
		n, err := io.ReadFull(conn, buf)
		if bytes.HasPrefix(buf[:n], []byte("HTTP/1.")) {
			// An answer, not the segment: the service refused the size.
			line, _, _ := bytes.Cut(buf[:n], []byte("\r\n"))
			body := buf[bytes.LastIndex(buf[:n], []byte("\r\n"))+2 : n]
			return fmt.Errorf("exact-size service: %s %s", line, bytes.TrimSpace(body))
		}
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("exact-size service: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, info)
}

// exactGet is a request for the service's path with query q, padded with
// a pad parameter to total bytes when total is larger than it.
func exactGet(q string, total int) []byte {
	const tail = " HTTP/1.1\r\nHost: mtuscope\r\nConnection: close\r\n\r\n"
	head := api.RungExactPath + "?" + q
	n := len("GET ") + len(head) + len(tail)
	if total > n+len("&p=") {
		head += "&p=" + strings.Repeat("x", total-n-len("&p="))
	}
	return []byte("GET " + head + tail)
}

// exactInfo asks the service what it sees of a connection from here.
func (r *runner) exactInfo(ctx context.Context, addr string) (api.ExactInfo, error) {
	var info api.ExactInfo
	err := r.exactRequest(ctx, addr, exactGet("i=1", 0), 0, &info)
	return info, err
}

// exactUp sends a request making one IP packet of size bytes; the answer
// (small, so it passes) says how large the largest segment that arrived
// was: a request the path or the system split is measured as what it was.
func (r *runner) exactUp(ctx context.Context, addr string, size int, info api.ExactInfo) Handshake {
	hdr, opt := diagnose.IPHeader(r.family), exactOpt(info)
	h := Handshake{Kind: KindExactUp, HelloBytes: size - hdr - opt, UpSize: size, Up: diagnose.Untested, Down: diagnose.Untested}
	start := r.now()
	var got api.ExactInfo
	err := r.exactRequest(ctx, addr, exactGet("u=1", h.HelloBytes), 0, &got)
	h.Duration = r.now().Sub(start)
	if exactResult(&h, err, ctx.Err() != nil, &h.Up) && got.RcvMSS > 0 && got.RcvMSS+hdr+opt < size {
		h.UpSize = got.RcvMSS + hdr + opt
		h.Detail = fmt.Sprintf("the request arrived in segments of at most %d bytes", got.RcvMSS)
	}
	return h
}

// exactDown asks for one segment making an IP packet of size bytes.
func (r *runner) exactDown(ctx context.Context, addr string, size int, info api.ExactInfo) Handshake {
	hdr, opt := diagnose.IPHeader(r.family), exactOpt(info)
	h := Handshake{Kind: KindExactDown, DownSize: size, Up: diagnose.Untested, Down: diagnose.Untested}
	start := r.now()
	err := r.exactRequest(ctx, addr, exactGet("size="+strconv.Itoa(size), 0), size-hdr-opt, nil)
	h.Duration = r.now().Sub(start)
	h.FlightBytes = size - hdr - opt
	exactResult(&h, err, ctx.Err() != nil, &h.Down)
	return h
}

// dialError is a connection that did not open.
type dialError struct{ error }

func (e dialError) Unwrap() error { return e.error }

// exactResult fills the outcome of an exact-size test and its direction's
// result res: passed (it reports true), lost (a timeout on an open
// connection), or neither.
func exactResult(h *Handshake, err error, cancelled bool, res *diagnose.Result) bool {
	var de dialError
	switch {
	case err == nil:
		*res, h.Outcome = diagnose.Passed, diagnose.Completed
		return true
	case cancelled:
		h.Outcome, h.Detail = diagnose.Timeout, "run timeout"
	case errors.As(err, &de):
		h.Outcome, h.Detail = diagnose.ConnectFailed, err.Error()
	case isTimeout(err):
		*res, h.Outcome, h.Detail = diagnose.Failed, diagnose.Timeout, "the exact-size segment never arrived"
	default:
		h.Outcome, h.Detail = diagnose.Reset, readErrText(err)
	}
	return false
}

// exactOpt is what TCP options add to each segment of the service's
// connections.
func exactOpt(info api.ExactInfo) int {
	if info.Timestamps {
		return 12
	}
	return 0
}
