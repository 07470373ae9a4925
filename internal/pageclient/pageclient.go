// Package pageclient runs the page's check from Go as web/static/app.js
// runs it in a browser, through package api's types: a session, every
// step of every rung at once, the result. mtuscope-serve-load runs many.
package pageclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/api"
)

// Result is the outcome of one check.
type Result struct {
	ReportID string
	Verdict  string
	// Session is the time to run every rung and store the report;
	// Store is the time of the result request alone.
	Session, Store time.Duration
}

// Check does what the page's script does, with c (whose connections
// are fresh for every rung, as a browser's are per origin): it starts a
// session at base ("https://host:port"), runs the hello, download and
// upload steps and opens the server-first probe of every rung in
// parallel, and posts the results. dial opens the probe connections.
func Check(ctx context.Context, c *http.Client, base string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (Result, error) {
	var run Result
	start := time.Now()
	var sess api.Session
	if err := post(ctx, c, base+api.SessionsPath, api.SessionRequest{RTTms: 1}, http.StatusCreated, &sess); err != nil {
		return run, err
	}
	// Sessions from one address test one after the other: wait for the turn.
	for !sess.Started {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(time.Duration(max(sess.RetryMs, 100)) * time.Millisecond):
		}
		var st api.Turn
		if err := postAny(ctx, c, base+api.SessionsPath+"/"+sess.ID+"/start", &st); err != nil {
			return run, err
		}
		sess.Started = st.Started
	}
	host := base[len("https://"):strings.LastIndexByte(base, ':')]
	fam := 4
	if strings.HasPrefix(host, "[") {
		fam = 6
	}
	results := make([]api.BrowserRung, len(sess.Rungs))
	var wg sync.WaitGroup
	errs := make(chan error, len(sess.Rungs))
	for i, r := range sess.Rungs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := api.BrowserRung{MSS: r.MSS, Family: fam, Hello: api.StepOK, Down: api.StepOK, Up: api.StepOK, Probe: api.StepOpened}
			rb := fmt.Sprintf("https://%s:%d", host, r.Port)
			q := "?s=" + sess.ID
			if err := get(ctx, c, rb+api.RungHelloPath+q, -1); err != nil {
				errs <- err
				rr.Hello = api.StepFail
			} else if err := get(ctx, c, fmt.Sprintf("%s%s%s&n=%d", rb, api.RungDownPath, q, sess.DownloadBytes), sess.DownloadBytes); err != nil {
				errs <- err
				rr.Down = api.StepFail
			} else if err := postBody(ctx, c, rb+api.RungUpPath+q, "text/plain", strings.Repeat("u", sess.UploadBytes), http.StatusOK, nil); err != nil {
				errs <- err
				rr.Up = api.StepFail
			}
			if pc, err := dial(ctx, "tcp", net.JoinHostPort(strings.Trim(host, "[]"), fmt.Sprint(r.DownPort))); err == nil {
				pc.SetDeadline(time.Now().Add(5 * time.Second))
				io.ReadAtLeast(pc, make([]byte, 2048), 1)
				pc.Close()
			}
			results[i] = rr
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return run, fmt.Errorf("rung step: %w", err)
	}
	var rep api.Submitted
	t0 := time.Now()
	if err := post(ctx, c, base+api.SessionsPath+"/"+sess.ID+"/result", api.PageResult{Rungs: results, RTTms: 1}, http.StatusCreated, &rep); err != nil {
		return run, err
	}
	run.Store, run.Session = time.Since(t0), time.Since(start)
	run.ReportID, run.Verdict = rep.ID, string(rep.Verdict)
	return run, nil
}

// postAny posts an empty object and decodes a 200 or 202 answer.
func postAny(ctx context.Context, c *http.Client, url string, v any) error {
	err := post(ctx, c, url, struct{}{}, http.StatusOK, v)
	if err != nil && strings.Contains(err.Error(), "202 Accepted") {
		return nil
	}
	return err
}

func get(ctx context.Context, c *http.Client, url string, wantLen int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || (wantLen >= 0 && n != int64(wantLen)) {
		return fmt.Errorf("GET %s: %s, %d bytes", url, resp.Status, n)
	}
	return nil
}

// post posts body as JSON and decodes a want answer into v (unless nil).
func post(ctx context.Context, c *http.Client, url string, body any, want int, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return postBody(ctx, c, url, "application/json", string(b), want, v)
}

func postBody(ctx context.Context, c *http.Client, url, contentType, body string, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}
