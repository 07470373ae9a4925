package server_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/internal/servetest"
	"github.com/mtuscope/mtuscope/internal/testnet"
)

// probeDoc is the part of `mtuscope probe --json` these tests read.
type probeDoc struct {
	Verdict   string `json:"verdict"`
	Direction string `json:"direction"`
	PathMTU   int    `json:"path_mtu"`
	Findings  []struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"findings"`
	Skipped []string `json:"skipped"`
	Tests   []struct {
		Name    string         `json:"name"`
		Params  map[string]any `json:"params"`
		Outcome string         `json:"outcome"`
	} `json:"tests"`
}

// echoOutcome returns the outcome of the fragmented udp_echo test, "" if none ran.
func (d probeDoc) echoOutcome() string {
	for _, t := range d.Tests {
		if t.Name == "udp_echo" && t.Params["fragment"] == true {
			return t.Outcome
		}
	}
	return ""
}

// busy says the run's findings blame a busy computer or server for what
// it could not decide (too_slow, or hello variants left undecided).
func (d probeDoc) busy() bool {
	return d.has("too_slow") || d.has("variants_undecided") || d.has("variants_inconclusive")
}

func (d probeDoc) has(code string) bool {
	for _, f := range d.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

func runProbe(t *testing.T, n *testnet.Net, args ...string) (probeDoc, string) {
	t.Helper()
	testnet.Heavy(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res := n.Client.Run(ctx, testnet.Mtuscope(t), append([]string{"probe", "--json", "--log-level", "debug"}, args...)...)
	t.Logf("probe exit %d, stderr:\n%s", res.ExitCode, tailLines(string(res.Stderr), 5))
	var d probeDoc
	if err := json.Unmarshal([]byte(res.Stdout), &d); err != nil {
		t.Fatalf("probe %v: %v\nstdout: %s\nstderr: %s", args, err, res.Stdout, res.Stderr)
	}
	return d, string(res.Stderr)
}

// TestProbeAgainstServe runs probe against mtuscope serve: in S4 the
// server's view of the SYN shows the clamp; behind a TLS-terminating proxy
// the server's view of the ClientHello shows the interception.
func TestProbeAgainstServe(t *testing.T) {
	t.Run("S4 clamped", func(t *testing.T) {
		t.Parallel()
		n := testnet.New(t, testnet.Preset("S4"))
		servetest.Start(t, n)
		target := net.JoinHostPort(n.Server.V4.String(), strconv.Itoa(servetest.TargetPort))
		d, stderr := runProbe(t, n, "--timeout", "60s", target)
		if !strings.Contains(stderr, "server-assisted run") {
			t.Errorf("probe did not detect the server:\n%s", tailLines(stderr, 20))
		}
		if !d.has("mss_clamped") {
			t.Errorf("no mss_clamped finding: %+v (skipped %v)", d.Findings, d.Skipped)
		}
		t.Logf("S4: %s %s %d, findings %d", d.Verdict, d.Direction, d.PathMTU, len(d.Findings))
	})
	t.Run("intercepted", func(t *testing.T) {
		t.Parallel()
		n := testnet.New(t, testnet.Preset("S1"))
		servetest.Start(t, n)
		n.StartInterceptor(t, 0, servetest.TargetPort)
		target := net.JoinHostPort(n.Server.V4.String(), strconv.Itoa(servetest.TargetPort))
		d, stderr := runProbe(t, n, "--timeout", "60s", target)
		if !strings.Contains(stderr, "server-assisted run") {
			t.Errorf("probe did not detect the server through the proxy:\n%s", tailLines(stderr, 20))
		}
		if d.Verdict != "tls_intercepted" || !d.has("tls_intercepted") {
			t.Errorf("verdict %s, findings %+v (skipped %v): want tls_intercepted", d.Verdict, d.Findings, d.Skipped)
		}
		// The interceptor (OpenSSL, ECDSA certificate) takes the probe's
		// large post-quantum hellos like a browser's: no false split finding.
		if d.has("clienthello_split_intolerant") {
			t.Errorf("split-intolerance blamed on the interceptor: %+v", d.Findings)
		}
		if d.PathMTU != 1500 {
			t.Errorf("path MTU %d through the interceptor on a clean path, want 1500", d.PathMTU)
		}
		t.Logf("intercepted: %s %s %d", d.Verdict, d.Direction, d.PathMTU)
	})
	t.Run("not intercepted", func(t *testing.T) {
		t.Parallel()
		n := testnet.New(t, testnet.Preset("S1"))
		srv := servetest.Start(t, n)
		target := net.JoinHostPort(n.Server.V4.String(), strconv.Itoa(servetest.TargetPort))
		d, stderr := runProbe(t, n, "--timeout", "60s", "--submit", srv.HTTPURL(4, ""), target)
		if !strings.Contains(stderr, "report stored: "+srv.HTTPURL(4, "/r/")) {
			t.Errorf("no report stored:\n%s", tailLines(stderr, 10))
		}
		if d.has("tls_intercepted") || d.Verdict != "ok" {
			t.Errorf("clean path: verdict %s, findings %+v", d.Verdict, d.Findings)
		}
		if got := d.echoOutcome(); got != "echo_reply" {
			t.Errorf("fragmented UDP echo on a clean path: %q, want echo_reply", got)
		}
	})
	// The server's UDP echo tells the directions of fragment loss apart:
	// inbound fragments dropped in front of the client show as downstream;
	// S5 (dropped both ways) shows upstream, since the echo never answers
	// with more than it received and the request itself dies on the way up.
	for _, tc := range []struct {
		name      string
		sc        testnet.Scenario
		direction string
		echo      string
	}{
		{"inbound fragments dropped", testnet.Scenario{Name: "frag-down", Networks: []testnet.Faults{{DropFragmentsDown: true}}}, "downstream", "request_arrived"},
		{"S5", testnet.Preset("S5"), "upstream", "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := testnet.New(t, tc.sc)
			servetest.Start(t, n)
			target := net.JoinHostPort(n.Server.V4.String(), strconv.Itoa(servetest.TargetPort))
			d, _ := runProbe(t, n, "--timeout", "60s", target)
			if d.Verdict != "fragments_dropped" || d.Direction != tc.direction || d.PathMTU != 1500 {
				t.Errorf("%s %s %d, want fragments_dropped %s 1500; findings %+v", d.Verdict, d.Direction, d.PathMTU, tc.direction, d.Findings)
			}
			if got := d.echoOutcome(); got != tc.echo {
				t.Errorf("fragmented UDP echo: %q, want %q", got, tc.echo)
			}
		})
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
