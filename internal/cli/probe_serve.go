package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/probe"
	"github.com/mtuscope/mtuscope/probe/assist"
)

// findServer asks the target, before the probe starts, whether it is an
// mtuscope server; if so the run is server-assisted. When the port named
// is one of the server's clamped listeners (the page URL serve prints, a
// rung), the probe moves to the server's probe target (t.Port changes): a
// listener clamped to MSS 1220 would show its own clamp as the path's
// (pmtu_reduced 1260, "MSS clamped on the way"). A server without a probe
// target is an error that says so.
func findServer(ctx context.Context, g *globals, t *probe.Target, portable bool) (probe.Assistant, error) {
	c := detectAssistant(ctx, g, *t, portable)
	if c == nil {
		return nil, nil
	}
	switch tp := c.Caps.TargetPort; {
	case tp == t.Port:
	case tp == 0:
		return nil, fmt.Errorf("%s is an mtuscope server whose listener there is clamped (the page's MSS is %d), and the server "+
			"has no probe target (serve's target: is off): probing it would measure the clamp, not the path; "+
			"enable the target or probe another server", net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), c.Caps.PageMSS)
	default:
		fmt.Fprintf(g.stderr, "mtuscope: %s is an mtuscope server's page or rung listener (its MSS is clamped); "+
			"probing its probe target, port %d, instead\n", net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), tp)
		t.Port = tp
		t.Input = net.JoinHostPort(t.Host, strconv.Itoa(tp)) // the report names what was measured
	}
	return c, nil
}

// detectAssistant asks the target whether it is an mtuscope server
// (/.well-known/mtuscope.json). Any failure just means an unassisted run,
// nil; it takes at most 3 s, and a fifth of the run's time bound (ctx's
// deadline), so that a silent target leaves the probe its time.
func detectAssistant(ctx context.Context, g *globals, t probe.Target, portable bool) *assist.Client {
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
	wait := 3 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)/5)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	base := "https://" + net.JoinHostPort(host, strconv.Itoa(t.Port))
	var dial func(context.Context, string, string) (net.Conn, error)
	if portable {
		// As on a system without TCP_MAXSEG: across a black hole this
		// channel works only on the server's clamped page listener.
		dial = (&net.Dialer{}).DialContext
	}
	c, err := assist.Detect(ctx, base, dial)
	if err != nil {
		g.logger.Debug("no server assistance", "target", base, "err", err)
		return nil
	}
	g.logger.Info("the target is an mtuscope server: server-assisted run", "version", c.Caps.Version)
	return c
}

// submitReport stores the run's evidence on an mtuscope server, trusting
// roots (nil: the system's) for its certificate.
func submitReport(ctx context.Context, g *globals, url, target string, ev diagnose.Evidence, roots *x509.CertPool) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	u, err := assist.Submit(ctx, url, target, []diagnose.Evidence{ev}, roots)
	if err != nil {
		return fmt.Errorf("--submit %s: %w", url, err)
	}
	fmt.Fprintf(g.stderr, "report stored: %s\n", u)
	return nil
}

// loadCA reads the PEM certificates of --ca: the only roots --submit
// trusts, as curl's --cacert (for a server with the self-signed
// certificate serve makes, that certificate file).
func loadCA(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in it", file)
	}
	return pool, nil
}
