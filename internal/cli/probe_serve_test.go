package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/server"
)

// startServe runs a diagnostic server on loopback with its self-signed
// certificate: the page, the probe target and the rungs on free ports.
func startServe(t *testing.T) (*server.Server, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := server.Defaults()
	cfg.HTTPS, cfg.HTTP, cfg.Admin, cfg.Target, cfg.Echo.Listen = "127.0.0.1:0", "", "", "127.0.0.1:0", ""
	cfg.DataDir, cfg.Rungs.BasePort, cfg.Rungs.RefinePorts = dir, 0, 0
	cfg.Rungs.First, cfg.Rungs.Last = 1220, 1236
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, dir
}

// TestProbeAtThePageURL: probe pointed at the page URL serve prints moves
// to the server's probe target (it used to measure the page's listener,
// clamped to MSS 1220, and report pmtu_reduced 1260, "MSS clamped on the
// way"), and --submit to the self-signed server works with --ca naming its
// certificate (it failed on x509 with no way to trust it).
func TestProbeAtThePageURL(t *testing.T) {
	srv, dir := startServe(t)
	page := "https://" + srv.Addrs["https"] + "/"
	targetPort := srv.Addrs["target"][strings.LastIndexByte(srv.Addrs["target"], ':')+1:]
	ca := filepath.Join(dir, "selfsigned-cert.pem")
	code, out, errOut := run(t, "probe", "--json", "--no-icmp", "--timeout", "60s", "--submit", page, "--ca", ca, page)
	var doc probeDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("exit %d, not JSON: %v\n%s%s", code, err, out, errOut)
	}
	t.Logf("probe %s: exit %d, %s %s %d, target %s; stderr %q", page, code, doc.Verdict, doc.Direction, doc.PathMTU, doc.Target, errOut)
	if !strings.Contains(errOut, "probing its probe target, port "+targetPort) {
		t.Errorf("probe did not say it moved to the probe target %s", targetPort)
	}
	if _, p, _ := net.SplitHostPort(doc.Target); p != targetPort {
		t.Errorf("probe measured %s, want the probe target's port %s", doc.Target, targetPort)
	}
	if code != ExitOK || doc.Verdict != "ok" {
		t.Errorf("loopback through the probe target: exit %d, %s %d %+v; want ok", code, doc.Verdict, doc.PathMTU, doc.Findings)
	}
	if !strings.Contains(errOut, "report stored: "+strings.TrimSuffix(page, "/")+"/r/") {
		t.Errorf("--submit with --ca did not store the report: %q", errOut)
	}

	// Without --ca the self-signed server's certificate is refused, and
	// probe says why.
	code, _, errOut = run(t, "probe", "--json", "--no-icmp", "--no-assist", "--timeout", "60s", "--submit", page,
		"127.0.0.1:"+targetPort)
	if code == ExitOK || !strings.Contains(errOut, "certificate") {
		t.Errorf("--submit without --ca: exit %d, stderr %q; want the certificate error", code, errOut)
	}
	// A --ca file without a certificate is a usage error.
	code, _, errOut = run(t, "probe", "--ca", filepath.Join(dir, "reports.db"), "127.0.0.1:"+targetPort)
	if code != ExitUsage || !strings.Contains(errOut, "--ca") {
		t.Errorf("--ca with no certificate: exit %d, stderr %q", code, errOut)
	}
}

// TestProbeServerWithoutTarget: a server with no probe target is an error
// that says where probe was pointed and why it will not measure there.
func TestProbeServerWithoutTarget(t *testing.T) {
	dir := t.TempDir()
	cfg := server.Defaults()
	cfg.HTTPS, cfg.HTTP, cfg.Admin, cfg.Target, cfg.Echo.Listen = "127.0.0.1:0", "", "", "", ""
	cfg.DataDir, cfg.Rungs.BasePort, cfg.Rungs.RefinePorts, cfg.Rungs.Last = dir, 0, 0, 1236
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	start := time.Now()
	code, _, errOut := run(t, "probe", "--no-icmp", "--timeout", "30s", srv.Addrs["https"])
	if code != ExitUsage || !strings.Contains(errOut, "no probe target") {
		t.Errorf("exit %d after %v, stderr %q", code, time.Since(start), errOut)
	}
}
