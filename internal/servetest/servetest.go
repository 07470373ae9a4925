// Package servetest runs `mtuscope serve` for tests: the real binary in the
// testbed's server namespace with the test PKI, and an HTTP client in a
// client namespace that trusts it.
package servetest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// Ports the testbed's server listens on (the defaults of mtuscope serve).
const (
	HTTPSPort = 8443
	// TargetPort is the unclamped listener probe runs against.
	TargetPort = 8444
	HTTPPort   = 8080
	AdminPort  = 9090
	EchoPort   = 9300
)

// Serve is a running `mtuscope serve` in n.Server.
type Serve struct {
	Net     *testnet.Net
	Proc    *testnet.Proc
	DataDir string
	Args    []string
}

// Start runs mtuscope serve in the server namespace with the test PKI
// (RSA-4096 leaf and intermediate, so the first flight spans segments)
// and extra arguments, and waits until it answers from the client.
func Start(t testing.TB, n *testnet.Net, extra ...string) *Serve {
	t.Helper()
	certs, err := testnet.TestCerts()
	if err != nil {
		t.Fatal(err)
	}
	s := &Serve{Net: n, DataDir: t.TempDir()}
	s.Args = append([]string{"serve", "--data-dir", s.DataDir, "--cert", certs.ChainFile, "--key", certs.KeyFile,
		"--log-level", "debug"}, extra...)
	if s.Proc, err = n.Server.Start(testnet.Mtuscope(t), s.Args...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Proc.Stop()
		if t.Failed() {
			t.Logf("mtuscope serve stderr:\n%s", tail(s.Proc.Stderr.String(), 6000))
		}
	})
	if err := s.WaitReady(n.Client, 4, 15*time.Second); err != nil {
		t.Fatalf("mtuscope serve: %v\nstderr: %s", err, s.Proc.Stderr.String())
	}
	return s
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// WaitReady polls the capabilities document from host until it answers
// (whatever certificate the server has).
func (s *Serve) WaitReady(host *testnet.Host, family int, within time.Duration) error {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: host.Dialer(&net.Dialer{}), TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(s.URL(family, api.CapabilitiesPath))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("capabilities: %s", resp.Status)
		}
		select {
		case <-s.Proc.Done():
			return fmt.Errorf("exited: %v", s.Proc.Wait())
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URL is the page's HTTPS URL for path over family 4 or 6.
func (s *Serve) URL(family int, path string) string {
	return fmt.Sprintf("https://%s%s", net.JoinHostPort(s.Net.Server.Addr(family).String(), fmt.Sprint(HTTPSPort)), path)
}

// HTTPURL is the page's plain-HTTP URL for path.
func (s *Serve) HTTPURL(family int, path string) string {
	return fmt.Sprintf("http://%s%s", net.JoinHostPort(s.Net.Server.Addr(family).String(), fmt.Sprint(HTTPPort)), path)
}

// Client returns an HTTP client whose connections start in host's
// namespace and trust the test PKI.
func Client(host *testnet.Host) *http.Client {
	certs, _ := testnet.TestCerts()
	pool, _ := certs.Pool()
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext:         host.Dialer(&net.Dialer{}),
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: testnet.ServerName},
		ForceAttemptHTTP2:   false,
		MaxIdleConnsPerHost: 64,
	}}
}

// GetJSON fetches url with c into v.
func GetJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, v)
}

// ArtifactDir is where tests leave files for people to look at:
// $MTUSCOPE_ARTIFACTS, or mtuscope-artifacts in the temporary directory.
func ArtifactDir() string {
	if d := os.Getenv("MTUSCOPE_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "mtuscope-artifacts")
}
