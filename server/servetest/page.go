package servetest

import (
	"bytes"
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

// PageRun is the outcome of one emulated page session.
type PageRun struct {
	ReportID string
	Verdict  string
	// Session is the time to run every rung and store the report;
	// Store is the time of the result request alone.
	Session, Store time.Duration
}

// RunPage does what the page's script does, with c (whose connections
// are fresh for every rung, as a browser's are per origin): it starts a
// session at base ("https://host:port"), runs the hello, download and
// upload steps and opens the server-first probe of every rung in
// parallel, and posts the results. dial opens the probe connections.
func RunPage(ctx context.Context, c *http.Client, base string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (PageRun, error) {
	var run PageRun
	start := time.Now()
	var sess struct {
		ID    string `json:"id"`
		Rungs []struct {
			MSS      int `json:"mss"`
			Port     int `json:"port"`
			DownPort int `json:"down_port"`
		} `json:"rungs"`
		DownloadBytes int  `json:"download_bytes"`
		UploadBytes   int  `json:"upload_bytes"`
		Started       bool `json:"started"`
		RetryMs       int  `json:"retry_ms"`
	}
	if err := post(ctx, c, base+api.SessionsPath, `{"rtt_ms":1}`, http.StatusCreated, &sess); err != nil {
		return run, err
	}
	// Sessions from one address test one after the other: wait for the turn.
	for !sess.Started {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(time.Duration(max(sess.RetryMs, 100)) * time.Millisecond):
		}
		var st struct {
			Started bool `json:"started"`
		}
		if err := postAny(ctx, c, base+api.SessionsPath+"/"+sess.ID+"/start", &st); err != nil {
			return run, err
		}
		sess.Started = st.Started
	}
	host := base[len("https://"):strings.LastIndexByte(base, ':')]
	type rungResult struct {
		MSS    int    `json:"mss"`
		Family int    `json:"family"`
		Hello  string `json:"hello"`
		Down   string `json:"down"`
		Up     string `json:"up"`
		Probe  string `json:"probe"`
	}
	fam := 4
	if strings.HasPrefix(host, "[") {
		fam = 6
	}
	results := make([]rungResult, len(sess.Rungs))
	var wg sync.WaitGroup
	errs := make(chan error, len(sess.Rungs))
	for i, r := range sess.Rungs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := rungResult{MSS: r.MSS, Family: fam, Hello: "ok", Down: "ok", Up: "ok", Probe: "opened"}
			rb := fmt.Sprintf("https://%s:%d", host, r.Port)
			q := "?s=" + sess.ID
			if err := get(ctx, c, rb+api.RungHelloPath+q, -1); err != nil {
				errs <- err
				rr.Hello = "fail"
			} else if err := get(ctx, c, fmt.Sprintf("%s/t/down%s&n=%d", rb, q, sess.DownloadBytes), sess.DownloadBytes); err != nil {
				errs <- err
				rr.Down = "fail"
			} else if err := post(ctx, c, rb+api.RungUpPath+q, strings.Repeat("u", sess.UploadBytes), http.StatusOK, nil); err != nil {
				errs <- err
				rr.Up = "fail"
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
	body, _ := json.Marshal(map[string]any{"rungs": results, "rtt_ms": 1})
	var rep struct {
		ID      string `json:"id"`
		Verdict string `json:"verdict"`
	}
	t0 := time.Now()
	if err := post(ctx, c, base+api.SessionsPath+"/"+sess.ID+"/result", string(body), http.StatusCreated, &rep); err != nil {
		return run, err
	}
	run.Store, run.Session = time.Since(t0), time.Since(start)
	run.ReportID, run.Verdict = rep.ID, rep.Verdict
	return run, nil
}

// postAny posts an empty object and decodes a 200 or 202 answer.
func postAny(ctx context.Context, c *http.Client, url string, v any) error {
	err := post(ctx, c, url, "{}", http.StatusOK, v)
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

func post(ctx context.Context, c *http.Client, url, body string, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
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
