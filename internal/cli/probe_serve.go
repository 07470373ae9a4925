package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/probe"
	"github.com/mtuscope/mtuscope/probe/assist"
)

// detectAssistant asks the target whether it is an mtuscope server
// (/.well-known/mtuscope.json); if so probe runs server-assisted. Any
// failure just means an unassisted run. The probe runs it alongside its
// first tests, within the run's deadline (ctx).
func detectAssistant(ctx context.Context, g *globals, t probe.Target) probe.Assistant {
	host := t.Host
	if !t.Addr.IsValid() {
		// A name that does not resolve quickly is the probe's to report;
		// detection must not add to the run's time bound.
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		addrs, err := net.DefaultResolver.LookupHost(rctx, t.Host)
		cancel()
		if err != nil || len(addrs) == 0 {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	base := "https://" + net.JoinHostPort(host, strconv.Itoa(t.Port))
	c, err := assist.Detect(ctx, base, nil)
	if err != nil {
		g.logger.Debug("no server assistance", "target", base, "err", err)
		return nil
	}
	g.logger.Info("the target is an mtuscope server: server-assisted run", "version", c.Caps.Version)
	return c
}

// submitReport stores the run's evidence on an mtuscope server.
func submitReport(ctx context.Context, g *globals, url, target string, ev diagnose.Evidence) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	u, err := assist.Submit(ctx, url, target, []diagnose.Evidence{ev})
	if err != nil {
		return fmt.Errorf("--submit %s: %w", url, err)
	}
	fmt.Fprintf(g.stderr, "report stored: %s\n", u)
	return nil
}
