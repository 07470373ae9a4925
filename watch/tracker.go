package watch

import (
	"errors"
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

// errNoTracker says the flow tracker is not part of this build yet.
var errNoTracker = errors.New("the flow tracker is not yet available in this build")

// newTracker builds the flow tracker and a function reading its figures.
var newTracker = func(cfg trackerConfig) (tracker, func() trackerFigures, error) {
	return nil, nil, errNoTracker
}

// errNoLive says live capture is not part of this build yet.
var errNoLive = errors.New("live capture (-i) is not yet available in this build; use --read")

// openLive opens a live capture on iface for ports.
var openLive = func(iface string, ports []uint16) (capture.Source, error) {
	return nil, errNoLive
}

// Available says whether this build has what a live watch needs: the
// flow tracker and live capture.
func Available() error {
	if _, _, err := newTracker(trackerConfig{Emit: func(flow.Handshake) {}}); err != nil {
		return err
	}
	if !liveAvailable {
		return errNoLive
	}
	return nil
}

// liveAvailable says openLive captures (set where it is defined).
var liveAvailable = false
