package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/textsafe"
	"github.com/mtuscope/mtuscope/monitor"
	"github.com/mtuscope/mtuscope/watch"
)

type watchArgs struct {
	config      string
	checkConfig bool
	read        []string
	json        bool
	settings    *settingFlags[watch.Config]
}

// watchSettings are watch's flags, each with the config field it sets.
// The config file's other keys have no flag (docs/watch.yaml says which).
var watchSettings = []setting[watch.Config]{
	{"interface", "i", func(c *watch.Config) any { return &c.Interface }, `network interface to capture on ("any" for all)`},
	{"port", "", func(c *watch.Config) any { return &c.Ports }, "TLS server port to watch (repeatable)"},
	{"asn-db", "", func(c *watch.Config) any { return &c.ASNDatabase }, "ASN database (default DATA-DIR/asn.db; missing: /24 and /48 groups)"},
	{"page-url", "", func(c *watch.Config) any { return &c.PageURL }, "the diagnostic page's URL, put in every alert for the customer"},
	{"alertmanager", "", func(c *watch.Config) any { return &c.Alertmanager }, "Alertmanager base URL to post alerts to (its /api/v2/alerts)"},
	{"webhook", "", func(c *watch.Config) any { return &c.Webhook }, "URL to post alerts to as JSON"},
	{"admin", "", func(c *watch.Config) any { return &c.Admin }, `admin listen address: metrics, health, operator view ("" disables)`},
	{"data-dir", "", func(c *watch.Config) any { return &c.DataDir }, "data directory (default $XDG_DATA_HOME/mtuscope)"},
	{"database", "", func(c *watch.Config) any { return &c.Database }, "database of buckets and alerts (default DATA-DIR/watch.db when live; none with --read unless set)"},
	{"handshake-log", "", func(c *watch.Config) any { return &c.HandshakeLog }, `file for one JSON line per stalled or failed handshake ("-": standard output)`},
	{"max-flows", "", func(c *watch.Config) any { return &c.MaxFlows }, "flow table bound (the oldest unfinished handshakes are evicted, counted)"},
	{"handshake-timeout", "", func(c *watch.Config) any { return &c.HandshakeTimeout }, "packet time a handshake may take before it is classified as it stands"},
}

func newWatchCmd(g *globals) *cobra.Command {
	a := &watchArgs{}
	cmd := &cobra.Command{
		Use:   "watch (-i IFACE | --read FILE...)",
		Short: "Watch TLS handshakes passively and alert on a client network whose handshakes stall",
		Long: `watch classifies every TLS handshake to the watched ports from captured
packets, groups them by the client's network (ASN and organisation from the
ASN database, or the /24 and /48 prefix without one) in one-minute buckets,
and alerts when one network's handshakes stall while the other networks'
complete, with the probable cause (path MTU black hole and its direction,
the path-MTU bracket) and the fixes; and when one network's ClientHellos
fail for one thing they carry (post-quantum key share, ML-DSA algorithms,
a 256-511-byte length, a split hello) while its hellos without it and
other networks' hellos with it complete, naming that feature and its
fixes (resets alone never alert). Only handshakes whose TCP three-way
exchange the capture saw are evidence; the others (forged sources, or
connections older than the capture) are counted apart as unverified.

Live (-i IFACE) needs CAP_NET_RAW; it serves metrics, health and the
operator view on the admin listener (127.0.0.1:9091) and keeps per-network
buckets and the alert history in SQLite in the data directory.
--read FILE (repeatable) replays pcap or pcapng files (also gzipped),
one after the other in the order given, through the same pipeline; it
needs no privilege, prints the per-network summary and the alerts
(--json: one JSON document, see docs/watch-json.md) and exits 1 when an
alert fired.

A YAML config file (--config) sets these, the retention and the alerting
thresholds (docs/watch.yaml lists every key); unknown keys are errors naming
the key and its line, and flags override the file. --check-config checks the
configuration, prints the effective configuration as YAML (passwords and
query strings of the alert URLs redacted) and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWatch(cmd, g, a) },
	}
	f := cmd.Flags()
	f.StringVar(&a.config, "config", "", "YAML config file (strict: unknown keys are errors)")
	f.BoolVar(&a.checkConfig, "check-config", false, "check the configuration, print it as YAML (URL secrets redacted) and exit")
	f.StringArrayVar(&a.read, "read", nil, "replay this capture file instead of capturing live (repeatable, in order)")
	f.BoolVar(&a.json, "json", false, "with --read: print one JSON document instead of the summary")
	a.settings = bindSettings(f, watch.Defaults(), watchSettings)
	return cmd
}

func runWatch(cmd *cobra.Command, g *globals, a *watchArgs) error {
	cfg := watch.Defaults()
	if a.config != "" {
		c, err := watch.LoadConfig(a.config)
		if err != nil {
			return withExit(ExitUsage, err)
		}
		cfg = c
	}
	a.settings.apply(cmd.Flags(), &cfg)
	if err := cfg.Validate(); err != nil {
		return withExit(ExitUsage, fmt.Errorf("configuration: %w", err))
	}
	if a.checkConfig {
		summary := fmt.Sprintf("configuration OK: ports %v, bucket %s, window %d buckets, top %d networks exported",
			cfg.Ports, cfg.Monitor.Bucket, cfg.Monitor.Window, cfg.Monitor.TopN)
		return printConfig(g.stdout, summary, redactWatch(cfg))
	}
	switch {
	case len(a.read) > 0 && cfg.Interface != "":
		return withExit(ExitUsage, fmt.Errorf("-i and --read exclude each other"))
	case len(a.read) == 0 && cfg.Interface == "":
		return withExit(ExitUsage, fmt.Errorf("say where packets come from: -i IFACE or --read FILE"))
	case a.json && len(a.read) == 0:
		return withExit(ExitUsage, fmt.Errorf("--json goes with --read"))
	case a.json && cfg.HandshakeLog == "-":
		return withExit(ExitUsage, fmt.Errorf("--json and --handshake-log - would both write to standard output"))
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	live := len(a.read) == 0
	w, err := watch.New(cfg, watch.Options{Logger: g.logger, Stdout: g.stdout, UseDatabase: live})
	if err != nil {
		return withExit(ExitUsage, err)
	}
	if !live {
		err := w.Replay(ctx, a.read)
		cerr := w.Close()
		printWarnings(g, w.Warnings())
		if err != nil {
			return withExit(ExitUsage, err)
		}
		if cerr != nil {
			return withExit(ExitProblem, cerr)
		}
		snap := w.Monitor.Snapshot(false)
		if a.json {
			err = writeWatchJSON(g.stdout, snap, w.Figures(), w.Warnings())
		} else {
			err = writeWatchSummary(g.stdout, snap, w.Figures())
		}
		if err != nil {
			return withExit(ExitProblem, err)
		}
		if len(snap.Alerts) > 0 {
			return withExit(ExitProblem, nil)
		}
		return nil
	}
	defer w.Close()
	if err := w.Restore(ctx, time.Now()); err != nil {
		return withExit(ExitProblem, err)
	}
	// Capture first: when the admin listener answers, packets are being seen.
	if err := w.OpenLive(); err != nil {
		return withExit(ExitUsage, err)
	}
	if cfg.Admin != "" {
		addr, err := w.ServeAdmin(ctx, cfg.Admin)
		if err != nil {
			return withExit(ExitUsage, err)
		}
		fmt.Fprintf(g.stdout, "admin: http://%s/ (operator view, metrics, health)\n", addr)
	}
	g.logger.Info("watching", "interface", cfg.Interface, "ports", cfg.Ports)
	if err := w.Live(ctx); err != nil {
		return withExit(ExitUsage, err)
	}
	return nil
}

// WatchDocument is the JSON that watch --read --json prints (see
// docs/watch-json.md).
type WatchDocument struct {
	SchemaVersion int                      `json:"schema_version"`
	Networks      []monitor.NetworkSummary `json:"networks"`
	Alerts        []monitor.Alert          `json:"alerts"`
	Totals        map[string]int           `json:"totals"`
	Capture       monitor.PipelineStats    `json:"capture"`
	Folded        uint64                   `json:"folded"`
	// Unverified counts, by outcome, the handshakes whose TCP three-way
	// exchange the capture did not see: evidence for no network.
	Unverified map[string]int `json:"unverified"`
	// Warnings say what the replay could not take in: a file cut short,
	// read up to the cut.
	Warnings []string `json:"warnings,omitempty"`
}

func writeWatchJSON(out io.Writer, snap monitor.Snapshot, figs monitor.PipelineStats, warnings []string) error {
	doc := WatchDocument{SchemaVersion: 1, Networks: snap.Networks, Alerts: snap.Alerts, Totals: map[string]int{}, Capture: figs, Folded: snap.Folded,
		Warnings: warnings}
	if doc.Networks == nil {
		doc.Networks = []monitor.NetworkSummary{}
	}
	if doc.Alerts == nil {
		doc.Alerts = []monitor.Alert{}
	}
	for o, n := range snap.Totals {
		doc.Totals[string(o)] = n
	}
	doc.Unverified = map[string]int{}
	for o, n := range snap.Unverified {
		doc.Unverified[string(o)] = n
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func writeWatchSummary(out io.Writer, snap monitor.Snapshot, figs monitor.PipelineStats) error {
	fmt.Fprintf(out, "%d packets, %d handshakes", figs.Packets, sum(snap.Totals))
	if figs.DecodeErrors > 0 || figs.FlowsEvicted > 0 {
		fmt.Fprintf(out, " (%d packets not decoded, %d unfinished flows evicted)", figs.DecodeErrors, figs.FlowsEvicted)
	}
	fmt.Fprintln(out)
	if n := sum(snap.Unverified); n > 0 {
		fmt.Fprintf(out, "%d more unverified (their TCP three-way exchange not in the capture: forged sources, or connections older than it), evidence for no network\n", n)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tASN\tORG\tHANDSHAKES\tCOMPLETED\tSTALLED UP\tSTALLED DOWN\tOTHER\tALERT\tVERDICT\tDIRECTION\tPATH MTU UP\tPATH MTU DOWN")
	for _, n := range snap.Networks {
		done, up, down := n.Outcomes[diagnose.Completed], n.Outcomes[diagnose.StalledClientHello], n.Outcomes[diagnose.StalledServerFlight]
		alert := "-"
		switch {
		case n.Firing:
			alert = "firing"
		case n.Alert:
			alert = "resolved"
		}
		org := textsafe.Escape(n.Org)
		if org == "" {
			org = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", n.Network, n.ASN, org, n.Handshakes, done, up, down,
			n.Handshakes-done-up-down, alert, n.Verdict, n.Direction,
			bracket(n.PathMTU.UpDelivered, n.PathMTU.UpLost), bracket(n.PathMTU.DownDelivered, n.PathMTU.DownLost))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(snap.Alerts) == 0 {
		_, err := fmt.Fprintln(out, "\nno alerts")
		return err
	}
	fmt.Fprintln(out, "\nalerts:")
	for _, a := range snap.Alerts {
		when := a.StartsAt.Format("15:04:05")
		if a.State == monitor.Resolved {
			when = a.EndsAt.Format("15:04:05")
		}
		fmt.Fprintf(out, "  %s %-8s %s\n", when, a.State, textsafe.Escape(a.Summary))
		if a.State != monitor.Firing {
			continue
		}
		for _, f := range a.Diagnosis.Findings {
			fmt.Fprintf(out, "      %s\n", textsafe.Escape(f.Detail))
		}
		for _, f := range a.Diagnosis.Fixes {
			fmt.Fprintf(out, "      fix (%s): %s\n", f.Where, f.Title)
			for _, c := range f.Commands {
				fmt.Fprintf(out, "        %s\n", c)
			}
		}
		if a.PageURL != "" {
			fmt.Fprintf(out, "      page for the customer: %s\n", a.PageURL)
		}
	}
	return nil
}

func bracket(delivered, lost int) string {
	switch {
	case delivered == 0 && lost == 0:
		return "-"
	case lost == 0:
		return fmt.Sprintf(">=%d", delivered)
	}
	return strings.TrimSpace(fmt.Sprintf("%d-%d", delivered, lost-1))
}

func sum(m map[diagnose.Outcome]int) int {
	t := 0
	for _, n := range m {
		t += n
	}
	return t
}
