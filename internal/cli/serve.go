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
	over        server.Config // flag values, applied when the flag was set
	addresses   []string
	acmeHosts   []string
}

func newServeCmd(g *globals) *cobra.Command {
	a := &serveArgs{over: server.Defaults()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the diagnostic server: the page customers open, rung listeners, UDP echo, reports",
		Long: `serve runs the diagnostic server. With no configuration it serves the page
over HTTPS on :8443 and HTTP on :8080 (a self-signed certificate is made and
kept in the data directory), one HTTPS rung listener per MSS from 1220 to 1460
in steps of 8 on ports 9400 up, their server-first probe listeners on ports
9500 up, a UDP echo on :9300, and metrics, health and the operator views on
127.0.0.1:9090. Reports go to SQLite in the data directory.

A YAML config file (--config) sets the same things; unknown keys are errors.
--check-config checks the configuration, prints it and exits. The operator
token comes from the config file or $MTUSCOPE_TOKEN, never from a flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, g, a) },
	}
	f := cmd.Flags()
	d := &a.over
	f.StringVar(&a.config, "config", "", "YAML config file (strict: unknown keys are errors)")
	f.BoolVar(&a.checkConfig, "check-config", false, "check the configuration, print it and exit")
	f.StringVar(&d.HTTPS, "https", d.HTTPS, "HTTPS listen address of the page")
	f.StringVar(&d.HTTP, "http", d.HTTP, `plain-HTTP listen address of the page ("" disables)`)
	f.StringVar(&d.Admin, "admin", d.Admin, `admin listen address: metrics, health, operator views ("" disables)`)
	f.IntVar(&d.PageMSS, "page-mss", d.PageMSS, "MSS the page's own listeners are clamped to")
	f.StringVar(&d.DataDir, "data-dir", "", "data directory (default $XDG_DATA_HOME/mtuscope)")
	f.StringVar(&d.Database, "database", "", "reports database (default DATA-DIR/reports.db)")
	f.StringVar(&d.ASNDatabase, "asn-db", "", "ASN database (default DATA-DIR/asn.db; missing: /24 and /48 groups)")
	f.StringVar(&d.TLS.CertFile, "cert", "", "certificate chain file (PEM)")
	f.StringVar(&d.TLS.KeyFile, "key", "", "private key file (PEM)")
	f.StringSliceVar(&a.acmeHosts, "acme-host", nil, "public host name to get an ACME certificate for (repeatable)")
	f.StringVar(&d.TLS.ACMEEmail, "acme-email", "", "contact address for the ACME account")
	f.StringVar(&d.HostnameV4, "hostname-v4", "", "host name (or address) that reaches this server over IPv4")
	f.StringVar(&d.HostnameV6, "hostname-v6", "", "host name (or address) that reaches this server over IPv6")
	f.IntVar(&d.Rungs.First, "rung-first", d.Rungs.First, "smallest rung MSS")
	f.IntVar(&d.Rungs.Last, "rung-last", d.Rungs.Last, "largest rung MSS")
	f.IntVar(&d.Rungs.Step, "rung-step", d.Rungs.Step, "MSS step between rungs")
	f.IntVar(&d.Rungs.BasePort, "rung-port", d.Rungs.BasePort, "port of the first rung (the others follow; 0: any free ports)")
	f.IntVar(&d.Rungs.DownBasePort, "rung-probe-port", d.Rungs.DownBasePort, "port of the first rung's server-first probe (0: none, or any free ports with --rung-port 0)")
	f.StringSliceVar(&a.addresses, "rung-addresses", nil, "one address per rung instead of ports (each on --rung-address-port)")
	f.IntVar(&d.Rungs.RefineBasePort, "refine-port", d.Rungs.RefineBasePort, "first port of the refinement round's pool (one listener per size inside a bracket)")
	f.IntVar(&d.Rungs.RefinePorts, "refine-ports", d.Rungs.RefinePorts, "ports in the refinement pool (0: no refinement, the page gives a bracket)")
	f.IntVar(&d.Rungs.Port, "rung-address-port", d.Rungs.Port, "port of the per-address rungs")
	f.StringVar(&d.Echo.Listen, "echo", d.Echo.Listen, `UDP echo listen address ("" disables)`)
	return cmd
}

// flagTargets maps flag names to the config fields they set.
func (a *serveArgs) apply(cmd *cobra.Command, cfg *server.Config) {
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	o := &a.over
	set("https", func() { cfg.HTTPS = o.HTTPS })
	set("http", func() { cfg.HTTP = o.HTTP })
	set("admin", func() { cfg.Admin = o.Admin })
	set("page-mss", func() { cfg.PageMSS = o.PageMSS })
	set("data-dir", func() { cfg.DataDir = o.DataDir })
	set("database", func() { cfg.Database = o.Database })
	set("asn-db", func() { cfg.ASNDatabase = o.ASNDatabase })
	set("cert", func() { cfg.TLS.CertFile = o.TLS.CertFile })
	set("key", func() { cfg.TLS.KeyFile = o.TLS.KeyFile })
	set("acme-host", func() { cfg.TLS.ACMEHosts = a.acmeHosts })
	set("acme-email", func() { cfg.TLS.ACMEEmail = o.TLS.ACMEEmail })
	set("hostname-v4", func() { cfg.HostnameV4 = o.HostnameV4 })
	set("hostname-v6", func() { cfg.HostnameV6 = o.HostnameV6 })
	set("rung-first", func() { cfg.Rungs.First = o.Rungs.First })
	set("rung-last", func() { cfg.Rungs.Last = o.Rungs.Last })
	set("rung-step", func() { cfg.Rungs.Step = o.Rungs.Step })
	set("rung-port", func() { cfg.Rungs.BasePort = o.Rungs.BasePort })
	set("rung-probe-port", func() { cfg.Rungs.DownBasePort = o.Rungs.DownBasePort })
	set("rung-addresses", func() { cfg.Rungs.Addresses = a.addresses })
	set("rung-address-port", func() { cfg.Rungs.Port = o.Rungs.Port })
	set("refine-port", func() { cfg.Rungs.RefineBasePort = o.Rungs.RefineBasePort })
	set("refine-ports", func() { cfg.Rungs.RefinePorts = o.Rungs.RefinePorts })
	set("echo", func() { cfg.Echo.Listen = o.Echo.Listen })
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
	a.apply(cmd, &cfg)
	if err := cfg.Validate(); err != nil {
		return withExit(ExitUsage, fmt.Errorf("configuration: %w", err))
	}
	if a.checkConfig {
		fmt.Fprintf(g.stdout, "configuration OK: %d rungs, MSS %d-%d step %d\n", len(cfg.RungMSS()),
			cfg.Rungs.First, cfg.Rungs.Last, cfg.Rungs.Step)
		return nil
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
