package watch

import (
	"time"

	"github.com/mtuscope/mtuscope/capture"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/packet"
)

// tracker is what the pipeline needs of the flow tracker.
type tracker interface {
	Packet(p *packet.Packet, ts time.Time)
	Advance(now time.Time)
	Flush(now time.Time)
}

// trackerFigures are the flow table's figures for the metrics.
type trackerFigures struct {
	Open, Max int
	Evicted   uint64
}

// trackerConfig is how the pipeline sets up a tracker.
type trackerConfig struct {
	Ports            []uint16
	MaxFlows         int
	HandshakeTimeout time.Duration
	Emit             func(flow.Handshake)
}

// newTracker builds the flow tracker and a function reading its figures
// (called under the pipeline's lock: the tracker is single-goroutine).
func newTracker(cfg trackerConfig) (tracker, func() trackerFigures, error) {
	t := flow.NewTracker(flow.Config{Ports: cfg.Ports, MaxFlows: cfg.MaxFlows,
		HandshakeTimeout: cfg.HandshakeTimeout, Emit: cfg.Emit})
	return t, func() trackerFigures {
		s := t.Stats()
		return trackerFigures{Open: s.Open, Max: s.Max, Evicted: s.Evicted}
	}, nil
}

// openLive opens a live capture on iface for ports.
func openLive(iface string, ports []uint16) (capture.Source, error) {
	return capture.OpenLive(capture.LiveConfig{Interface: iface, Ports: ports})
}
