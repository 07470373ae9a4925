// Package server is mtuscope's diagnostic server: the page a customer
// opens, served from listeners clamped to a small MSS so it loads through
// a black hole; the rung listeners (one TCP MSS each) the page measures
// against; the server-side evidence (the SYN's MSS, TCP_INFO, the
// ClientHello that arrived) joined to the page's; the UDP echo for probe;
// the stored reports, their API and the operator views; metrics and health
// on a separate admin listener.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/store"
)

// Server is a configured diagnostic server. Start it, then Shutdown.
type Server struct {
	cfg     Config
	log     *slog.Logger
	version string

	store    *store.Store
	asn      asn.Lookuper
	certs    *certSource
	tmpl     *templates
	reg      *registry
	sessions *sessions
	metrics  *metrics
	echo     *echoServer
	token    string

	sessLim, repLim, testLim *limiter
	pending                  pendingConns // unfinished connections per address and in all
	authFail                 *limiter     // failed operator-token attempts per address
	downSem                  chan struct{}
	download                 []byte

	rungs      []rung
	refinePool *portPool
	refineSrv  *http.Server // serves every refinement listener (mixedListener)
	rungTLS    *tls.Config  // the rungs' and refinement listeners' TLS
	servers    []*http.Server
	closers    []func() error
	// Addrs are the bound addresses, by name ("https", "http", "admin",
	// "echo"), once Start returned.
	Addrs map[string]string
	// binaries are the probe binaries the page listener hands out.
	binaries []probeBinary

	// wg counts every goroutine the server starts; stopped ends at
	// Shutdown (stop), which closes what they hold and waits for them.
	wg      sync.WaitGroup
	stopped context.Context
	stop    context.CancelFunc
}

// rung is one rung's listeners, once bound.
type rung = api.Rung

// New checks cfg, opens the report store, the ASN database (when there is
// one) and the certificates. It binds nothing yet.
func New(cfg Config, log *slog.Logger, version string) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dataDir := cfg.DataDir
	if dataDir == "" {
		d, err := asn.DefaultDir()
		if err != nil {
			return nil, err
		}
		dataDir = d
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	s := &Server{cfg: cfg, log: log, version: version, reg: newRegistry(3*time.Minute, 4096),
		sessions: newSessions(10*time.Minute, 100000), metrics: newMetrics(), Addrs: map[string]string{},
		downSem: make(chan struct{}, 4096)}
	s.stopped, s.stop = context.WithCancel(context.Background())
	s.refinePool = newPortPool(cfg.Rungs.RefineBasePort, cfg.Rungs.RefinePorts)
	if cfg.Rungs.BasePort == 0 {
		s.refinePool.base = 0 // tests: any free ports
	}
	s.token = cfg.Token
	if t := os.Getenv("MTUSCOPE_TOKEN"); t != "" {
		s.token = t
	}
	if s.token != "" && len(s.token) < MinTokenLen {
		return nil, fmt.Errorf("operator token: %d characters, at least %d", len(s.token), MinTokenLen)
	}
	s.authFail = newLimiter(authFailuresPerMinute/60.0, authFailuresPerMinute)
	s.sessLim = newLimiter(cfg.Limits.SessionsPerMinute/60, max(1, int(cfg.Limits.SessionsPerMinute)))
	s.repLim = newLimiter(cfg.Limits.ReportsPerMinute/60, max(1, cfg.Limits.Burst/10))
	s.testLim = newLimiter(cfg.Limits.TestsPerSecond, cfg.Limits.Burst)
	s.download = make([]byte, maxDownload)
	rand.Read(s.download)
	var err error
	if s.binaries, err = loadBinaries(cfg.Binaries); err != nil {
		return nil, err
	}
	if s.tmpl, err = loadTemplates(); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if s.certs, err = loadCerts(&cfg, dataDir); err != nil {
		return nil, err
	}
	asnPath := cfg.ASNDatabase
	if asnPath == "" {
		asnPath = filepath.Join(dataDir, asn.DBFile)
	}
	res, err := asn.Open(asnPath, log)
	if err != nil {
		return nil, err
	}
	s.asn = res
	dbPath := cfg.Database
	if dbPath == "" {
		dbPath = filepath.Join(dataDir, "reports.db")
	}
	if s.store, err = store.Open(dbPath); err != nil {
		return nil, err
	}
	s.store.SetRetention(store.Retention{MaxAge: cfg.Reports.MaxAge, MaxBytes: int64(cfg.Reports.MaxTotalMB) << 20,
		MaxNetworkBytes: int64(cfg.Reports.MaxAddressMB) << 20})
	s.metrics.watchStore(func(ctx context.Context) error { return s.store.CheckWrite(ctx, minFreeBytes) })
	return s, nil
}

// Start binds every listener and serves. It returns once all are bound.
func (s *Server) Start(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		s.Shutdown(context.Background())
		return err
	}
	// Unfinished connections stay well below the descriptor limit, whatever
	// the number of addresses they come from.
	// The fixed descriptors: the named listeners, two per rung, the pool.
	s.pending.setMax(pendingBound(openFileLimit(), len(s.Addrs)+2*len(s.rungs)+s.cfg.Rungs.RefinePorts))
	s.wg.Add(1)
	go s.sweeper()
	if r, ok := s.asn.(*asn.Resolver); ok {
		// A database replaced by `mtuscope asn update` (or import) is
		// picked up without a restart.
		wctx, cancel := context.WithCancel(context.Background())
		s.closers = append(s.closers, func() error { cancel(); return nil })
		s.wg.Add(1)
		go func() { defer s.wg.Done(); r.Watch(wctx, asnWatchInterval) }()
	}
	return nil
}

// asnWatchInterval is how often the ASN database file is checked for a
// new version (one stat; a reload only when it changed).
var asnWatchInterval = 2 * time.Second

func (s *Server) start(ctx context.Context) error {
	pageTLS := tlsConfig(s.certs, "h2", "http/1.1")
	if s.certs.acme != nil {
		pageTLS.NextProtos = append(pageTLS.NextProtos, "acme-tls/1")
	}
	page := s.pageHandler(false)
	if err := s.serve(ctx, "https", s.cfg.HTTPS, s.cfg.PageMSS, kindPage, page, pageTLS); err != nil {
		return err
	}
	if s.cfg.HTTP != "" {
		var h http.Handler = page
		if s.certs.acme != nil {
			h = s.certs.acme.HTTPHandler(page)
		}
		if err := s.serve(ctx, "http", s.cfg.HTTP, s.cfg.PageMSS, kindPage, h, nil); err != nil {
			return err
		}
	}
	if s.cfg.Admin != "" {
		if err := s.serve(ctx, "admin", s.cfg.Admin, 0, "admin", s.adminHandler(), nil); err != nil {
			return err
		}
	}
	if s.cfg.Target != "" {
		if err := s.serve(ctx, "target", s.cfg.Target, 0, kindRung, s.rungHandler(), tlsConfig(s.certs, "http/1.1")); err != nil {
			return err
		}
	}
	if err := s.startRungs(ctx); err != nil {
		return err
	}
	if s.cfg.Echo.Listen != "" {
		e, err := newEchoServer(ctx, s.cfg.Echo, s.metrics)
		if err != nil {
			return fmt.Errorf("echo: %w", err)
		}
		s.echo = e
		s.Addrs["echo"] = e.conn.LocalAddr().String()
		s.closers = append(s.closers, e.Close)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); e.serve() }()
	}
	return nil
}

// serve listens on addr (clamped to mss when mss > 0) and serves h on it.
func (s *Server) serve(ctx context.Context, name, addr string, mss int, kind string, h http.Handler, tlsConf *tls.Config) error {
	ln, err := s.listen(ctx, addr, mss, kind)
	if err != nil {
		return fmt.Errorf("%s listener %s: %w", name, addr, err)
	}
	s.Addrs[name] = ln.Addr().String()
	s.startServer(ln, h, tlsConf)
	return nil
}

func (s *Server) listen(ctx context.Context, addr string, mss int, kind string) (*evListener, error) {
	ln, err := listenTCP(ctx, "tcp", addr, mss)
	if err != nil {
		return nil, err
	}
	el := &evListener{Listener: ln, kind: kind, mss: mss, reg: s.reg, metrics: s.metrics, wg: &s.wg, stopped: s.stopped}
	if kind != "admin" {
		el.pending = &s.pending
	}
	return el, nil
}

func (s *Server) startServer(ln net.Listener, h http.Handler, tlsConf *tls.Config) {
	srv := newHTTPServer(h, tlsConf, s.log)
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if tlsConf != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// startRungs binds one HTTPS listener and one server-first probe listener
// per rung.
func (s *Server) startRungs(ctx context.Context) error {
	rc := s.cfg.Rungs
	host, _, _ := net.SplitHostPort(s.cfg.HTTPS)
	s.rungTLS = tlsConfig(s.certs, "http/1.1")
	h := s.rungHandler()
	// The rung servers get no TLSConfig: mixedListener does the handshake.
	s.refineSrv = newHTTPServer(h, nil, s.log)
	s.servers = append(s.servers, s.refineSrv)
	for i, mss := range s.cfg.RungMSS() {
		r := rung{MSS: mss}
		addr, downAddr := net.JoinHostPort(host, strconv.Itoa(portOr0(rc.BasePort, i))), ""
		switch {
		case rc.BasePort == 0: // tests: any free ports for both
			downAddr = net.JoinHostPort(host, "0")
		case rc.DownBasePort > 0:
			downAddr = net.JoinHostPort(host, strconv.Itoa(rc.DownBasePort+i))
		}
		if len(rc.Addresses) > 0 {
			r.Host = rc.Addresses[i]
			addr, downAddr = net.JoinHostPort(r.Host, strconv.Itoa(rc.Port)), ""
			if rc.DownPort > 0 {
				downAddr = net.JoinHostPort(r.Host, strconv.Itoa(rc.DownPort))
			}
		}
		ln, err := s.listen(ctx, addr, mss, kindRung)
		if err != nil {
			return fmt.Errorf("rung %d listener %s: %w", mss, addr, err)
		}
		r.Port = ln.Addr().(*net.TCPAddr).Port
		s.startServer(&mixedListener{Listener: ln, conf: s.rungTLS}, h, nil)
		if downAddr != "" {
			dl, err := s.listen(ctx, downAddr, mss, kindDown)
			if err != nil {
				return fmt.Errorf("rung %d probe listener %s: %w", mss, downAddr, err)
			}
			dl.onAccept = s.downProbe
			r.DownPort = dl.Addr().(*net.TCPAddr).Port
			s.closers = append(s.closers, dl.Close)
			s.wg.Add(1)
			go func() { defer s.wg.Done(); dl.Accept() }()
		}
		s.rungs = append(s.rungs, r)
	}
	return nil
}

// portOr0 returns base+i, or 0 (any free port) when base is 0.
func portOr0(base, i int) int {
	if base == 0 {
		return 0
	}
	return base + i
}

// Rungs returns the bound rungs.
func (s *Server) Rungs() []rung { return s.rungs }

// Shutdown stops accepting, lets requests in flight finish (until ctx
// ends), and closes the store: every report acknowledged is on disk.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stop()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, c := range s.closers {
		c()
	}
	s.wg.Wait()
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

func (s *Server) sweeper() {
	defer s.wg.Done()
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		if time.Since(lastPrune) >= pruneInterval {
			// The retention's age bound, also when no report arrives.
			if n, err := s.store.Prune(s.stopped); err != nil && s.stopped.Err() == nil {
				s.log.Error("prune reports", "err", err)
			} else if n > 0 {
				s.log.Info("pruned reports past the retention", "reports", n)
			}
			lastPrune = time.Now()
		}
		select {
		case <-s.stopped.Done():
			return
		case now := <-t.C:
			s.reg.sweep(now)
			s.sessions.sweep(now)
			s.sessLim.sweep()
			s.repLim.sweep()
			s.testLim.sweep()
		}
	}
}

// pruneInterval is how often the sweeper applies the reports' retention.
const pruneInterval = time.Hour

// PageURLs returns the URLs the page is reachable at, the one to open
// first: HTTPS, or plain HTTP while the certificate is the self-signed one
// (a browser refuses it; over http:// the page measures without TLS).
func (s *Server) PageURLs() []string {
	var out []string
	order := []string{"https", "http"}
	if s.certs.SelfSigned != "" {
		order = []string{"http", "https"}
	}
	for _, name := range order {
		if hp := s.publicAddr(name); hp != "" {
			out = append(out, fmt.Sprintf("%s://%s/", name, hp))
		}
	}
	return out
}

// ProbeTarget returns host:port of the unclamped listener `mtuscope probe`
// measures, "" when it is disabled.
func (s *Server) ProbeTarget() string { return s.publicAddr("target") }

// publicAddr is host:port of the named listener as a client names it: the
// configured host name, the bound address, or localhost for a wildcard.
func (s *Server) publicAddr(name string) string {
	a, ok := s.Addrs[name]
	if !ok {
		return ""
	}
	ap, err := netip.ParseAddrPort(a)
	if err != nil {
		return ""
	}
	host := "localhost"
	if s.cfg.HostnameV4 != "" {
		host = s.cfg.HostnameV4
	} else if s.cfg.HostnameV6 != "" {
		host = "[" + s.cfg.HostnameV6 + "]"
	} else if !ap.Addr().IsUnspecified() {
		host = ap.Addr().String()
		if ap.Addr().Is6() {
			host = "[" + host + "]"
		}
	}
	return fmt.Sprintf("%s:%d", host, ap.Port())
}

// SelfSigned names the self-signed certificate file when the server made one.
func (s *Server) SelfSigned() string { return s.certs.SelfSigned }
