package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mtuscope/mtuscope/server"
)

type serveArgs struct {
	config      string
	checkConfig bool
	settings    *settingFlags[server.Config]
}

// serveSettings are serve's flags, each with the config field it sets.
// The config file's other keys have no flag (docs/serve.yaml says which);
// the token is never a flag.
var serveSettings = []setting[server.Config]{
	{"https", "", func(c *server.Config) any { return &c.HTTPS }, "HTTPS listen address of the page"},
	{"http", "", func(c *server.Config) any { return &c.HTTP }, `plain-HTTP listen address of the page ("" disables)`},
	{"admin", "", func(c *server.Config) any { return &c.Admin }, `admin listen address: metrics, health, operator views ("" disables)`},
	{"page-mss", "", func(c *server.Config) any { return &c.PageMSS }, "MSS the page's own listeners are clamped to"},
	{"data-dir", "", func(c *server.Config) any { return &c.DataDir }, "data directory (default $XDG_DATA_HOME/mtuscope)"},
	{"database", "", func(c *server.Config) any { return &c.Database }, "reports database (default DATA-DIR/reports.db)"},
	{"asn-db", "", func(c *server.Config) any { return &c.ASNDatabase }, "ASN database (default DATA-DIR/asn.db; missing: /24 and /48 groups)"},
	{"cert", "", func(c *server.Config) any { return &c.TLS.CertFile }, "certificate chain file (PEM)"},
	{"key", "", func(c *server.Config) any { return &c.TLS.KeyFile }, "private key file (PEM)"},
	{"acme-host", "", func(c *server.Config) any { return &c.TLS.ACMEHosts }, "public host name to get an ACME certificate for (repeatable)"},
	{"acme-email", "", func(c *server.Config) any { return &c.TLS.ACMEEmail }, "contact address for the ACME account"},
	{"hostname-v4", "", func(c *server.Config) any { return &c.HostnameV4 }, "host name (or address) that reaches this server over IPv4"},
	{"hostname-v6", "", func(c *server.Config) any { return &c.HostnameV6 }, "host name (or address) that reaches this server over IPv6"},
	{"rung-first", "", func(c *server.Config) any { return &c.Rungs.First }, "smallest rung MSS"},
	{"rung-last", "", func(c *server.Config) any { return &c.Rungs.Last }, "largest rung MSS"},
	{"rung-step", "", func(c *server.Config) any { return &c.Rungs.Step }, "MSS step between rungs"},
	{"rung-port", "", func(c *server.Config) any { return &c.Rungs.BasePort }, "port of the first rung (the others follow; 0: any free ports)"},
	{"rung-probe-port", "", func(c *server.Config) any { return &c.Rungs.DownBasePort }, "port of the first rung's server-first probe (0: none, or any free ports with --rung-port 0)"},
	{"rung-addresses", "", func(c *server.Config) any { return &c.Rungs.Addresses }, "one address per rung instead of ports (each on --rung-address-port)"},
	{"refine-port", "", func(c *server.Config) any { return &c.Rungs.RefineBasePort }, "first port of the refinement round's pool (one listener per size inside a bracket)"},
	{"refine-ports", "", func(c *server.Config) any { return &c.Rungs.RefinePorts }, "ports in the refinement pool (0: no refinement, the page gives a bracket)"},
	{"rung-address-port", "", func(c *server.Config) any { return &c.Rungs.Port }, "port of the per-address rungs"},
	{"echo", "", func(c *server.Config) any { return &c.Echo.Listen }, `UDP echo listen address ("" disables)`},
}

func newServeCmd(g *globals) *cobra.Command {
	a := &serveArgs{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the diagnostic server: the page customers open, rung listeners, UDP echo, reports",
		Long: `serve runs the diagnostic server. With no configuration it serves the page
over HTTPS on :8443 and HTTP on :8080 (a self-signed certificate is made and
kept in the data directory), one HTTPS rung listener per MSS from 1220 to 1460
in steps of 8 on ports 9400 up, their server-first probe listeners on ports
9500 up, a UDP echo on :9300, and metrics, health and the operator views on
127.0.0.1:9090. Reports go to SQLite in the data directory.

A YAML config file (--config) sets these and more (docs/serve.yaml lists
every key); unknown keys are errors naming the key and its line, and flags
override the file. --check-config checks the configuration, prints the
effective configuration as YAML (the token redacted) and exits. The operator
token comes from the config file or $MTUSCOPE_TOKEN, never from a flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, g, a) },
	}
	f := cmd.Flags()
	f.StringVar(&a.config, "config", "", "YAML config file (strict: unknown keys are errors)")
	f.BoolVar(&a.checkConfig, "check-config", false, "check the configuration, print it as YAML (token redacted) and exit")
	a.settings = bindSettings(f, server.Defaults(), serveSettings)
	return cmd
}

func runServe(cmd *cobra.Command, g *globals, a *serveArgs) error {
	cfg := server.Defaults()
	if a.config != "" {
		c, err := server.LoadConfig(a.config)
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
		summary := fmt.Sprintf("configuration OK: %d rungs, MSS %d-%d step %d", len(cfg.RungMSS()),
			cfg.Rungs.First, cfg.Rungs.Last, cfg.Rungs.Step)
		return printConfig(g.stdout, summary, redactServe(cfg))
	}
	srv, err := server.New(cfg, g.logger, ReadBuildInfo().Version)
	if err != nil {
		return withExit(ExitUsage, err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return withExit(ExitProblem, err)
	}
	for i, u := range srv.PageURLs() {
		switch {
		case i == 0 && srv.SelfSigned() != "" && strings.HasPrefix(u, "http:"):
			fmt.Fprintf(g.stdout, "page: %s (open this one: browsers do not trust the self-signed certificate, so over http the page measures without TLS)\n", u)
		default:
			fmt.Fprintf(g.stdout, "page: %s\n", u)
		}
	}
	if t := srv.ProbeTarget(); t != "" {
		fmt.Fprintf(g.stdout, "probe target: %s (mtuscope probe %s: HTTPS without the page's MSS clamp)\n", t, t)
	}
	if a := srv.Addrs["admin"]; a != "" {
		fmt.Fprintf(g.stdout, "admin: http://%s/ (metrics, health, operator views)\n", a)
	}
	if f := srv.SelfSigned(); f != "" {
		fmt.Fprintf(g.stdout, "certificate: self-signed (%s); use --cert/--key or --acme-host for customers\n", f)
	}
	g.logger.Info("serving", "addrs", srv.Addrs, "rungs", len(srv.Rungs()))
	<-ctx.Done()
	g.logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15e9)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return withExit(ExitProblem, fmt.Errorf("shutdown: %w", err))
	}
	return nil
}
