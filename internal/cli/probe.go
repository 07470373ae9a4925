package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/probe"
)

// probeArgs are the flags of `mtuscope probe`.
type probeArgs struct {
	v4, v6  bool
	sni     string
	json    bool
	timeout time.Duration
	noICMP  bool
	// portable: the method without Linux socket options (Windows, macOS)
	portable bool
	// server-assisted mode and report submission (see probe_serve.go)
	noAssist bool
	submit   string
	ca       string
}

func newProbeCmd(g *globals) *cobra.Command {
	var a probeArgs
	cmd := &cobra.Command{
		Use:   "probe TARGET",
		Short: "Diagnose the path to a TLS endpoint: path MTU, black holes, fragments, hello sizes and content",
		Long: `probe finds why TLS handshakes to TARGET stall from this network. It runs TLS
handshakes at controlled segment sizes in both directions (an MSS ladder), a
ClientHello size sweep, ClientHellos that differ in one thing each (a
post-quantum key share, ML-DSA signature algorithms, a 256-511-byte length,
a split across segments or records, no SNI), and UDP and ICMP tests with and
without Don't Fragment, then prints one verdict (and every cause when there
are several), the path MTU, the direction of the problem, findings and fixes.

TARGET is host, host:port, https://host[:port]/..., or an IP literal
(192.0.2.1, [2001:db8::1]:443); the port defaults to 443.

Exit status: 0 for ok and pmtu_reduced, 1 when a problem was found, 3 when the
run decides nothing (inconclusive), 2 when the probe could not run (bad
arguments, a name that does not resolve).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runProbe(cmd.Context(), g, a, args[0]) },
	}
	f := cmd.Flags()
	f.BoolVarP(&a.v4, "ipv4", "4", false, "use IPv4 only")
	f.BoolVarP(&a.v6, "ipv6", "6", false, "use IPv6 only")
	f.StringVar(&a.sni, "sni", "", "server name to send (default: the target's host name; none for an address)")
	f.BoolVar(&a.json, "json", false, "print one JSON document (schema: docs/probe-json.md)")
	f.DurationVar(&a.timeout, "timeout", 30*time.Second, "bound on the whole run")
	f.BoolVar(&a.noICMP, "no-icmp", false, "skip the ICMP echo tests even when privileged")
	f.BoolVar(&a.portable, "portable", false, "test as on Windows and macOS, without Linux socket options (always on there): needs an mtuscope server to size segments")
	f.BoolVar(&a.noAssist, "no-assist", false, "do not look for an mtuscope server at the target")
	f.StringVar(&a.submit, "submit", "", "store the result as a report on the mtuscope server at this URL")
	f.StringVar(&a.ca, "ca", "", "PEM file of the only certificates --submit trusts, as curl's --cacert (a server's self-signed certificate)")
	return cmd
}

func runProbe(ctx context.Context, g *globals, a probeArgs, target string) error {
	if a.v4 && a.v6 {
		return withExit(ExitUsage, errors.New("-4 and -6 exclude each other"))
	}
	if a.timeout <= 0 {
		return withExit(ExitUsage, fmt.Errorf("--timeout %s: want a positive duration", a.timeout))
	}
	t, err := probe.ParseTarget(target)
	if err != nil {
		return withExit(ExitUsage, err)
	}
	var roots *x509.CertPool
	if a.ca != "" {
		if roots, err = loadCA(a.ca); err != nil {
			return withExit(ExitUsage, err)
		}
	}
	family := 0
	if a.v4 {
		family = 4
	} else if a.v6 {
		family = 6
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	// --timeout bounds everything from here, server detection included.
	cfg := probe.Config{Target: t, Family: family, ServerName: a.sni, Timeout: a.timeout, Start: time.Now(),
		SkipICMP: a.noICMP, Logger: g.logger, Portable: a.portable}
	if !a.noAssist {
		dctx, cancel := context.WithDeadline(ctx, cfg.Start.Add(a.timeout))
		cfg.Assistant, err = findServer(dctx, g, &cfg.Target, a.portable)
		cancel()
		if err != nil {
			return withExit(ExitUsage, err)
		}
	}
	var pl *progressLine
	if isTTY(g.stderr) {
		pl = &progressLine{w: g.stderr, target: target}
		cfg.Progress = pl.update
	}
	rep, err := probe.Run(ctx, cfg)
	pl.clear()
	if err != nil {
		return withExit(ExitUsage, err)
	}
	d := diagnose.Diagnose(rep.Evidence)
	if a.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(probeDocument(rep, d)); err != nil {
			return withExit(ExitProblem, err)
		}
	} else {
		writeHuman(g.stdout, rep, d, useColor(g.stdout))
	}
	if a.submit != "" {
		if err := submitReport(ctx, g, a.submit, rep.Target, rep.Evidence, roots); err != nil {
			return withExit(ExitProblem, err)
		}
	}
	return verdictExit(d.Verdict)
}

// progressLine is the live status line on a terminal.
type progressLine struct {
	mu     sync.Mutex
	w      io.Writer
	target string
	shown  bool
}

func (p *progressLine) update(pr probe.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[Kprobing %s: %s (%d connections, %.1f s)", p.target, pr.Phase, pr.Connections, pr.Elapsed.Seconds())
	p.shown = true
}

func (p *progressLine) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func isTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func useColor(w io.Writer) bool {
	return isTTY(w) && os.Getenv("NO_COLOR") == ""
}

func writeHuman(w io.Writer, rep *probe.Report, d diagnose.Diagnosis, color bool) {
	fam := fmt.Sprintf("IPv%d", rep.Family)
	if rep.ServerName != "" {
		fam += ", SNI " + rep.ServerName
	}
	fmt.Fprintf(w, "mtuscope probe %s (%s, %s)\n\n", rep.Target, rep.Address, fam)
	verdict := string(d.Verdict)
	if color {
		code := "32" // green
		if d.Verdict.Problem() {
			code = "31"
		}
		verdict = "\033[1;" + code + "m" + verdict + "\033[0m"
	}
	fmt.Fprintf(w, "  verdict    %s\n", verdict)
	if len(d.Causes) > 1 {
		fmt.Fprintf(w, "  causes     %s\n", joinVerdicts(d.Causes))
	}
	if lo, hi, _ := d.Bracket(); hi > lo {
		fmt.Fprintf(w, "  path MTU   between %d and %d bytes, not measured closer (largest packet through: upstream %s, downstream %s; local route %d)\n",
			lo, hi, orDash(d.UpstreamMTU), orDash(d.DownstreamMTU), rep.Evidence.LocalMTU)
	} else if d.PathMTU > 0 {
		fmt.Fprintf(w, "  path MTU   %d bytes (largest packet through: upstream %s, downstream %s; local route %d)\n",
			d.PathMTU, orDash(d.UpstreamMTU), orDash(d.DownstreamMTU), rep.Evidence.LocalMTU)
	} else {
		fmt.Fprintf(w, "  path MTU   unknown\n")
	}
	fmt.Fprintf(w, "  direction  %s\n", d.Direction)
	fmt.Fprintf(w, "  ran        %d TCP connections, %d UDP probes, %d ICMP echoes in %.1f s (RTT %.1f ms, handshake timeout %.1f s)\n",
		rep.Connections, len(rep.UDP), len(rep.Echo), rep.Elapsed.Seconds(), float64(rep.RTT.Microseconds())/1000, rep.HandshakeTimeout.Seconds())
	writeFindings(w, d.Findings, d.Fixes)
	fmt.Fprintf(w, "\n(--json for every test and its evidence)\n")
}

func joinVerdicts(vs []diagnose.Verdict) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func orDash(n int) string {
	if n <= 0 {
		return "untested"
	}
	return fmt.Sprint(n)
}

// probeDoc is the --json document; docs/probe-json.md describes it.
type probeDoc struct {
	SchemaVersion      int                `json:"schema_version"`
	Target             string             `json:"target"`
	Address            string             `json:"address"`
	Family             int                `json:"family"`
	ServerName         string             `json:"server_name"`
	Verdict            diagnose.Verdict   `json:"verdict"`
	Causes             []diagnose.Verdict `json:"causes"`
	PathMTU            int                `json:"path_mtu"`
	PathMTUUpper       int                `json:"path_mtu_upper"`
	Direction          diagnose.Direction `json:"direction"`
	UpstreamMTU        int                `json:"upstream_mtu"`
	DownstreamMTU      int                `json:"downstream_mtu"`
	LocalMTU           int                `json:"local_mtu"`
	RTTMS              float64            `json:"rtt_ms"`
	HandshakeTimeoutMS int64              `json:"handshake_timeout_ms"`
	Findings           []diagnose.Finding `json:"findings"`
	Fixes              []diagnose.Fix     `json:"fixes"`
	Tests              []testDoc          `json:"tests"`
	Skipped            []string           `json:"skipped"`
	Connections        int                `json:"connections"`
	ElapsedMS          int64              `json:"elapsed_ms"`
}

type testDoc struct {
	Name       string         `json:"name"`
	Params     map[string]any `json:"params"`
	Outcome    string         `json:"outcome"`
	DurationMS float64        `json:"duration_ms"`
	Result     map[string]any `json:"result,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func probeDocument(rep *probe.Report, d diagnose.Diagnosis) probeDoc {
	doc := probeDoc{
		SchemaVersion: 1, Target: rep.Target, Address: rep.Address, Family: rep.Family, ServerName: rep.ServerName,
		Verdict: d.Verdict, Causes: d.Causes, PathMTU: d.PathMTU, Direction: d.Direction, UpstreamMTU: d.UpstreamMTU, DownstreamMTU: d.DownstreamMTU,
		LocalMTU: rep.Evidence.LocalMTU, RTTMS: ms(rep.RTT), HandshakeTimeoutMS: rep.HandshakeTimeout.Milliseconds(),
		Findings: d.Findings, Fixes: d.Fixes, Tests: []testDoc{}, Skipped: rep.Evidence.Skipped,
		Connections: rep.Connections, ElapsedMS: rep.Elapsed.Milliseconds(),
	}
	_, doc.PathMTUUpper, _ = d.Bracket()
	if doc.Skipped == nil {
		doc.Skipped = []string{}
	}
	if doc.Causes == nil {
		doc.Causes = []diagnose.Verdict{}
	}
	for _, c := range rep.Addresses {
		out := "connected"
		res := map[string]any{"snd_mss": c.SndMSS}
		if c.Error != "" {
			out, res = "failed", map[string]any{"error": c.Error}
		}
		doc.Tests = append(doc.Tests, testDoc{Name: "tcp_connect", Params: map[string]any{"address": c.Address},
			Outcome: out, DurationMS: ms(c.Connect), Result: res})
	}
	for _, u := range rep.UDP {
		res := map[string]any{}
		if u.MTU > 0 {
			res["mtu"] = u.MTU
		}
		if u.From != "" {
			res["from"] = u.From
		}
		if u.Error != "" {
			res["error"] = u.Error
		}
		res["copies"] = u.Copies
		doc.Tests = append(doc.Tests, testDoc{Name: string(diagnose.MethodUDP), Params: map[string]any{"size": u.Size, "df": u.DF, "port": u.Port},
			Outcome: string(u.Answer), DurationMS: ms(u.Duration), Result: res})
	}
	for _, e := range rep.AssistedEcho {
		res := map[string]any{"arrived": e.Arrived, "echoed": e.Echoed}
		if e.Error != "" {
			res["error"] = e.Error
		}
		doc.Tests = append(doc.Tests, testDoc{Name: string(diagnose.MethodUDPEcho), Params: map[string]any{"size": e.Size, "fragment": e.Fragment},
			Outcome: string(e.Answer()), DurationMS: ms(e.Duration), Result: res})
	}
	for _, h := range rep.Handshakes {
		res := map[string]any{"up": h.Up, "down": h.Down, "up_size": h.UpSize, "down_size": h.DownSize,
			"snd_mss": h.SndMSS, "rcv_mss": h.RcvMSS, "unacked": h.Unacked, "retrans": h.Retrans, "flight_bytes": h.FlightBytes, "ooo_packets": h.OOOPackets}
		if h.TLSVersion != "" {
			res["tls_version"] = h.TLSVersion
		}
		if h.Group != "" {
			res["group"] = h.Group
		}
		if h.Detail != "" {
			res["detail"] = h.Detail
		}
		if h.Retried {
			res["retried"] = true
		}
		name := "tls_handshake"
		if h.Kind == probe.KindExactUp || h.Kind == probe.KindExactDown {
			name = "exact_segment" // portable mode: one segment of a set size, plain HTTP
		}
		doc.Tests = append(doc.Tests, testDoc{Name: name,
			Params:  map[string]any{"kind": h.Kind, "mss": h.MSS, "hello_bytes": h.HelloBytes},
			Outcome: string(h.Outcome), DurationMS: ms(h.Duration), Result: res})
	}
	for _, v := range rep.Variants {
		res := map[string]any{"hello_bytes": v.HelloBytes, "records": v.Records, "segments": v.Segments, "packet_size": v.PacketSize}
		for k, val := range map[string]string{"detail": v.Detail, "reset_by": v.ResetBy, "alert": v.Alert, "retry_group": v.RetryGroup} {
			if val != "" {
				res[k] = val
			}
		}
		params := map[string]any{"variant": v.Name, "attempt": v.Attempt, "mss": v.MSS}
		if v.PauseMS > 0 {
			params["pause_ms"] = v.PauseMS
		}
		doc.Tests = append(doc.Tests, testDoc{Name: "tls_variant", Params: params, Outcome: string(v.Outcome),
			DurationMS: ms(v.Duration), Result: res})
	}
	for _, e := range rep.Echo {
		out := diagnose.AnswerNone
		if e.Replied {
			out = diagnose.AnswerEchoReply
		}
		var res map[string]any
		if e.Retried {
			res = map[string]any{"retried": true}
		}
		doc.Tests = append(doc.Tests, testDoc{Name: string(diagnose.MethodICMPEcho), Params: map[string]any{"size": e.Size, "df": e.DF, "round": e.Round},
			Outcome: string(out), DurationMS: ms(e.Duration), Result: res})
	}
	return doc
}
