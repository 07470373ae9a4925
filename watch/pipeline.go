package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/monitor"
	"github.com/mtuscope/mtuscope/packet"
)

// packet runs one captured frame through the decoder and the tracker.
func (w *Watcher) packet(p *packet.Packet, data []byte, ci capture.Info) {
	if err := packet.Decode(ci.Link, data, p); err != nil {
		w.decodeErrors.Add(1)
		return
	}
	w.mu.Lock()
	w.tracker.Packet(p, ci.Timestamp)
	// Time moves with the packets: tick the tracker's timeouts and the
	// monitor's buckets every 100 ms of packet time.
	if ci.Timestamp.Sub(w.lastTS) >= 100*time.Millisecond {
		w.advance(ci.Timestamp)
	}
	w.mu.Unlock()
}

// Replay runs capture files through the pipeline, in the order given,
// then classifies what is left, closes the last bucket and delivers the
// alerts. Packet timestamps drive every window.
func (w *Watcher) Replay(ctx context.Context, files []string) error {
	if err := w.startTracker(); err != nil {
		return err
	}
	var p packet.Packet
	for _, path := range files {
		src, err := capture.OpenFile(path)
		if err != nil {
			return err
		}
		for {
			if ctx.Err() != nil {
				src.Close()
				return ctx.Err()
			}
			data, ci, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, capture.ErrTruncated) {
				// A capture cut short (tcpdump killed while writing):
				// what came before the cut counts; the next file follows.
				w.warnings = append(w.warnings, fmt.Sprintf("%v; replayed up to there", err))
				break
			}
			if err != nil {
				src.Close()
				return err
			}
			w.packets.Add(1)
			w.bytes.Add(uint64(ci.CaptureLength))
			w.packet(&p, data, ci)
		}
		src.Close()
	}
	w.mu.Lock()
	if !w.lastTS.IsZero() {
		// The capture ends at its last packet: what was open then is cut
		// short, as analyze has it, not timed out in time no packet saw.
		w.tracker.Flush(w.lastTS)
	}
	w.Monitor.Flush()
	w.mu.Unlock()
	for _, s := range w.Senders {
		if err := s.Drain(ctx); err != nil {
			return fmt.Errorf("delivering alerts: %w", err)
		}
	}
	return nil
}

// Warnings are what Replay could not take in: files cut short, read up
// to the cut.
func (w *Watcher) Warnings() []string { return w.warnings }

// OpenLive starts capturing on the configured interface (packets queue
// in the kernel ring until Live reads them). Without CAP_NET_RAW it fails
// with an error that names the capability.
func (w *Watcher) OpenLive() error {
	if err := w.startTracker(); err != nil {
		return err
	}
	src, err := openLive(w.cfg.Interface, w.ports())
	if err != nil {
		return err
	}
	w.live.Store(&src)
	return nil
}

// Live runs the capture OpenLive started (opening it if it did not) until
// ctx ends.
func (w *Watcher) Live(ctx context.Context) error {
	if w.live.Load() == nil {
		if err := w.OpenLive(); err != nil {
			return err
		}
	}
	src := *w.live.Load()
	go w.Resolver.Watch(ctx, 30*time.Second) // `asn update` replaces the file: no restart
	for _, s := range w.Senders {
		w.sendWG.Add(1)
		go func() { defer w.sendWG.Done(); s.Run(w.sendCtx) }()
	}
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	var p packet.Packet
	for {
		data, ci, err := src.Next()
		switch {
		case err == nil:
			w.packet(&p, data, ci)
		case errors.Is(err, capture.ErrIdle):
			// No packet for a while: time still passes.
			w.tick(time.Now())
		case errors.Is(err, io.EOF):
			return nil
		default:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("capture on %s: %w", w.cfg.Interface, err)
		}
	}
}

// tick moves the tracker's and the monitor's clocks to now when no packet
// did for a second.
func (w *Watcher) tick(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.lastTS) >= time.Second {
		w.advance(now)
	}
}

// advance moves the clocks (w.mu held), and writes out the handshake log
// once a second so that log pipelines see lines promptly.
func (w *Watcher) advance(now time.Time) {
	w.lastTS = now
	w.tracker.Advance(now)
	w.Monitor.Advance(now)
	if w.HSLog != nil && now.Sub(w.lastFlush) >= time.Second {
		w.lastFlush = now
		if err := w.HSLog.Flush(); err != nil {
			w.log.Warn("handshake log", "err", err)
		}
	}
}

// Figures returns the pipeline's capture and flow-table figures.
func (w *Watcher) Figures() monitor.PipelineStats {
	ps := monitor.PipelineStats{Packets: w.packets.Load(), Bytes: w.bytes.Load(), Dropped: w.dropped.Load(),
		DecodeErrors: w.decodeErrors.Load(), StoreDropped: w.storeDropped.Load()}
	if src := w.live.Load(); src != nil {
		st := (*src).Stats()
		ps.Packets += st.Packets
		ps.Bytes += st.Bytes
		ps.Dropped += st.Dropped
	}
	w.mu.Lock()
	if w.figures != nil {
		f := w.figures()
		ps.FlowsActive, ps.FlowsMax, ps.FlowsEvicted = f.Open, f.Max, f.Evicted
	}
	w.mu.Unlock()
	return ps
}
