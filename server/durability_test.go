package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/testnet"
)

// startBinary runs `mtuscope serve --config cfg` on loopback and returns
// the page and admin URLs it printed.
func startBinary(t *testing.T, bin, cfg, dir string) (*exec.Cmd, string, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg, "--data-dir", dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var page, admin string
	sc := bufio.NewScanner(out)
	for sc.Scan() && (page == "" || admin == "") {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "page: "); ok && strings.HasPrefix(u, "https") {
			page = strings.TrimSuffix(u, "/")
		}
		if u, ok := strings.CutPrefix(line, "admin: "); ok {
			admin = strings.TrimSuffix(strings.Fields(u)[0], "/")
		}
	}
	if page == "" || admin == "" {
		t.Fatalf("mtuscope serve printed no page or admin URL")
	}
	go io.Copy(io.Discard, out)
	return cmd, page, admin
}

const submission = `{"target":"198.51.100.7:443","evidence":[{"family":4,"local_mtu":1500,"connected":true,
"segments":[{"up_size":1300,"down_size":1300,"up":"passed","down":"passed","outcome":"completed"},
{"up_size":1500,"down_size":1500,"up":"failed","down":"failed","outcome":"stalled_clienthello"}]}]}`

// TestKill9KeepsAcknowledgedReports stores reports from several clients,
// kills the server with SIGKILL mid-stream, restarts it on the same data
// and finds every report whose creation was acknowledged.
func TestKill9KeepsAcknowledgedReports(t *testing.T) {
	t.Parallel()
	bin := testnet.Mtuscope(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve.yaml")
	os.WriteFile(cfg, []byte(`https: "127.0.0.1:0"
http: ""
admin: "127.0.0.1:0"
target: ""
echo: {listen: ""}
rungs: {first: 1220, last: 1460, step: 240, base_port: 0}
limits: {sessions_per_minute: 100000, reports_per_minute: 100000, tests_per_second: 100000, burst: 100000}
`), 0o644)
	cmd, page, _ := startBinary(t, bin, cfg, dir)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	var mu sync.Mutex
	var acked []string
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", page+"/api/v1/reports", strings.NewReader(submission))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					continue // the server died mid-request: not acknowledged
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusCreated {
					continue
				}
				var id string
				if i := strings.Index(string(b), `"id": "`); i >= 0 {
					id = string(b[i+7 : i+7+26])
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	// Kill once a good number of reports went through, while writes continue.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cancel()
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d reports acknowledged before the kill", len(acked))
	}

	cmd2, _, admin := startBinary(t, bin, cfg, dir)
	var missing []string
	for _, id := range acked {
		resp, err := c.Get(admin + "/api/v1/reports/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			missing = append(missing, fmt.Sprintf("%s (%d)", id, resp.StatusCode))
		}
	}
	t.Logf("%d reports acknowledged before SIGKILL; %d missing after restart", len(acked), len(missing))
	if len(missing) > 0 {
		t.Errorf("acknowledged reports lost: %v", missing[:min(10, len(missing))])
	}
	// SIGTERM: a graceful shutdown, exit status 0.
	cmd2.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd2.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("still running 30 s after SIGTERM")
	}
}
