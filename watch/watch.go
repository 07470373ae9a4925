package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/internal/textsafe"
	"github.com/mtuscope/mtuscope/monitor"
	"github.com/mtuscope/mtuscope/store"
)

// Options are a Watcher's collaborators and mode.
type Options struct {
	Logger *slog.Logger
	// Stdout receives the handshake log when its path is "-".
	Stdout io.Writer
	// UseDatabase opens the database (Config.Database, or watch.db in the
	// data directory when that is empty). Replays leave it off unless a
	// database was named.
	UseDatabase bool
	// Emit, when set, receives every classified handshake too, after the
	// monitor (under the pipeline's lock: it must not block).
	Emit func(flow.Handshake)
}

// Watcher is one watch: the pipeline from packets to the monitor and the
// monitor's outputs. Replay and Live feed it; Close ends it.
type Watcher struct {
	cfg Config
	log *slog.Logger

	Monitor  *monitor.Monitor
	Resolver *asn.Resolver
	Senders  []*monitor.Sender
	HSLog    *monitor.HandshakeLog
	hsFile   *os.File
	Store    *store.Store

	emitHook  func(flow.Handshake)
	mu        sync.Mutex // guards the tracker: one packet or tick at a time
	tracker   tracker
	figures   func() trackerFigures
	lastTS    time.Time
	lastFlush time.Time
	warnings  []string // Replay: files cut short, read up to the cut

	packets, bytes, dropped, decodeErrors atomic.Uint64
	// sourceStats adds the live source's counters to the finished files'.
	live atomic.Pointer[capture.Source]

	storeCh      chan storeItem
	storeDone    chan struct{}
	storeDropped atomic.Uint64

	sendCtx    context.Context
	sendCancel context.CancelFunc
	sendWG     sync.WaitGroup
}

type storeItem struct {
	bucket *monitor.BucketRecord
	alert  *monitor.Alert
}

// New sets up a Watcher: resolver, monitor, receivers, handshake log,
// database and flow tracker.
func New(cfg Config, opt Options) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg, log: log, emitHook: opt.Emit}
	dataDir := cfg.DataDir
	if dataDir == "" && (cfg.ASNDatabase == "" || (opt.UseDatabase && cfg.Database == "")) {
		d, err := asn.DefaultDir()
		if err != nil {
			return nil, err
		}
		dataDir = d
	}
	asnPath := cfg.ASNDatabase
	if asnPath == "" {
		asnPath = filepath.Join(dataDir, asn.DBFile)
	}
	res, err := asn.Open(asnPath, log)
	if err != nil {
		return nil, fmt.Errorf("asn database: %w", err)
	}
	w.Resolver = res
	lookup := safeLookup(res.Lookup)
	if st := res.Status(); !st.Loaded {
		log.Warn(asn.MissingMessage(asnPath))
	}
	if cfg.Alertmanager != "" {
		w.Senders = append(w.Senders, monitor.NewAlertmanager(cfg.Alertmanager, log))
	}
	if cfg.Webhook != "" {
		w.Senders = append(w.Senders, monitor.NewWebhook(cfg.Webhook, log))
	}
	switch cfg.HandshakeLog {
	case "":
	case "-":
		out := opt.Stdout
		if out == nil {
			out = os.Stdout
		}
		w.HSLog = monitor.NewHandshakeLog(out, lookup)
	default:
		f, err := os.OpenFile(cfg.HandshakeLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("handshake log: %w", err)
		}
		w.hsFile = f
		w.HSLog = monitor.NewHandshakeLog(f, lookup)
	}
	if opt.UseDatabase || cfg.Database != "" {
		path := cfg.Database
		if path == "" {
			path = filepath.Join(dataDir, "watch.db")
		}
		s, err := store.Open(path)
		if err != nil {
			w.closeFiles()
			return nil, err
		}
		w.Store = s
		w.storeCh = make(chan storeItem, 10000)
		w.storeDone = make(chan struct{})
		go w.storeLoop()
	}
	w.Monitor = monitor.New(cfg.Monitor, monitor.Options{
		Lookup: lookup, PageURL: cfg.PageURL, Logger: log,
		Notify: w.notify, Bucket: w.bucket,
	})
	w.sendCtx, w.sendCancel = context.WithCancel(context.Background())
	return w, nil
}

// safeLookup escapes the organisation names of the ASN data (a file
// anyone may have built) where they enter, so that every output of watch
// (the terminal, JSON, the operator view, metric labels, alerts and their
// annotations, the handshake log, the database) carries them escaped.
func safeLookup(lookup func(netip.Addr) asn.Result) func(netip.Addr) asn.Result {
	return func(a netip.Addr) asn.Result {
		r := lookup(a)
		r.Org = textsafe.Escape(r.Org)
		return r
	}
}

// startTracker builds the flow tracker that feeds the monitor.
func (w *Watcher) startTracker() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tracker != nil {
		return nil
	}
	t, figs, err := newTracker(trackerConfig{Ports: w.ports(), MaxFlows: w.cfg.MaxFlows,
		HandshakeTimeout: w.cfg.HandshakeTimeout, Emit: w.emit})
	if err != nil {
		return err
	}
	w.tracker, w.figures = t, figs
	return nil
}

func (w *Watcher) ports() []uint16 {
	ports := make([]uint16, len(w.cfg.Ports))
	for i, p := range w.cfg.Ports {
		ports[i] = uint16(p)
	}
	return ports
}

// Restore carries the database over a restart: alerts left firing are
// marked resolved (reason "restart": the monitor fires again within one
// bucket if the network still fails), and the buckets of the last history
// go back into the monitor. now is the wall clock of a live start.
func (w *Watcher) Restore(ctx context.Context, now time.Time) error {
	if w.Store == nil {
		return nil
	}
	if _, err := w.Store.ResolveOpen(ctx, now, "restart"); err != nil {
		return err
	}
	mc := w.Monitor.Config()
	bs, err := w.Store.Buckets(ctx, now.Add(-time.Duration(mc.History)*mc.Bucket), "")
	if err != nil {
		return err
	}
	recs := make([]monitor.BucketRecord, len(bs))
	for i, b := range bs {
		recs[i] = monitor.BucketRecord{Network: b.Network, ASN: b.ASN, Org: b.Org, Start: b.Start,
			Completed: b.Completed, StalledUp: b.StalledUp, StalledDn: b.StalledDown, Failed: b.Failed}
	}
	w.Monitor.Preload(recs)
	return nil
}

// emit receives each classified handshake from the tracker.
func (w *Watcher) emit(h flow.Handshake) {
	w.Monitor.Observe(h)
	if w.emitHook != nil {
		w.emitHook(h)
	}
	if w.HSLog != nil {
		if err := w.HSLog.Write(h); err != nil {
			w.log.Warn("handshake log", "err", err)
		}
	}
}

// notify receives alert changes (under the monitor's lock: it only queues).
func (w *Watcher) notify(a monitor.Alert) {
	for _, s := range w.Senders {
		s.Enqueue(a)
	}
	w.toStore(storeItem{alert: &a})
}

func (w *Watcher) bucket(b monitor.BucketRecord) { w.toStore(storeItem{bucket: &b}) }

func (w *Watcher) toStore(it storeItem) {
	if w.storeCh == nil {
		return
	}
	select {
	case w.storeCh <- it:
	default:
		w.storeDropped.Add(1)
	}
}

// storeLoop writes buckets (in batches) and alerts, and prunes what is
// older than the retention, measured from the newest bucket's time.
func (w *Watcher) storeLoop() {
	defer close(w.storeDone)
	ctx := context.Background()
	var batch []store.NetworkBucket
	var newest time.Time
	var lastPrune time.Time
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := w.Store.PutBuckets(ctx, batch); err != nil {
			w.log.Warn("storing buckets", "err", err)
		}
		batch = batch[:0]
		if newest.Sub(lastPrune) >= time.Hour {
			lastPrune = newest
			if _, err := w.Store.PruneWatch(ctx, newest.Add(-w.cfg.Retention)); err != nil {
				w.log.Warn("pruning", "err", err)
			}
		}
	}
	for it := range w.storeCh {
		switch {
		case it.bucket != nil:
			b := it.bucket
			batch = append(batch, store.NetworkBucket{Network: b.Network, Start: b.Start, ASN: b.ASN, Org: b.Org,
				Completed: b.Completed, StalledUp: b.StalledUp, StalledDown: b.StalledDn, Failed: b.Failed})
			if b.Start.After(newest) {
				newest = b.Start
			}
			if len(batch) >= 500 || len(w.storeCh) == 0 {
				flush()
			}
		case it.alert != nil:
			flush()
			a := it.alert
			body, _ := json.Marshal(a)
			if err := w.Store.PutAlert(ctx, store.AlertRecord{ID: a.ID, Kind: a.Kind, Network: a.Network, ASN: a.ASN,
				Org: a.Org, State: a.State, StartsAt: a.StartsAt, EndsAt: a.EndsAt, Verdict: string(a.Diagnosis.Verdict),
				Direction: string(a.Diagnosis.Direction), PathMTU: a.Diagnosis.PathMTU, Body: body}); err != nil {
				w.log.Warn("storing alert", "err", err)
			}
		}
	}
	flush()
}

// Close stops delivery, flushes the handshake log and closes the database.
func (w *Watcher) Close() error {
	if w.sendCancel != nil {
		// Give the receivers a moment for what is queued (resolutions at shutdown).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, s := range w.Senders {
			s.Drain(ctx)
		}
		cancel()
		w.sendCancel()
		w.sendWG.Wait()
	}
	var errs []error
	if w.HSLog != nil {
		errs = append(errs, w.HSLog.Flush())
	}
	if w.storeCh != nil {
		close(w.storeCh)
		<-w.storeDone
		errs = append(errs, w.Store.Close())
		w.storeCh = nil
	}
	errs = append(errs, w.closeFiles())
	return errors.Join(errs...)
}

func (w *Watcher) closeFiles() error {
	if w.hsFile != nil {
		err := w.hsFile.Close()
		w.hsFile = nil
		return err
	}
	return nil
}
