package probe

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Config says what to probe and how.
type Config struct {
	Target Target
	// Family is 4 or 6 to use only that family, 0 for the first address.
	Family int
	// ServerName is the SNI sent; default the target's host name (none for
	// an IP literal).
	ServerName string
	// Timeout bounds the whole run (default 30 s), counted from Start.
	Timeout time.Duration
	// Start is when the run began, for a caller that did something on its
	// behalf first; zero means when Run is called. Report.Elapsed counts
	// from it too.
	Start time.Time
	// Portable runs the method that needs no Linux socket option (see
	// portable.go); it is the only one where those options are missing.
	Portable bool
	// SkipICMP skips the ICMP echo tests even when privileged.
	SkipICMP bool
	Logger   *slog.Logger
	// Progress, when set, is called as the run advances.
	Progress func(Progress)
	// Assistant is a cooperating mtuscope server; nil without one.
	Assistant Assistant
	// Detect, when set and Assistant is nil, finds out whether the target
	// is a cooperating server (nil if not). Run calls it alongside its
	// first tests, within the run's time bound, and waits for its answer
	// only where an assistant would be used.
	Detect func(ctx context.Context) Assistant

	// TimeNow is the clock of what the run measures and reports (Start,
	// the run's time bound, connect and handshake times, Elapsed); nil
	// means time.Now. Socket deadlines and the rounds' scheduling follow
	// the wall clock, as the kernel does.
	TimeNow func() time.Time
	// Dial opens every TCP connection of the run with d, whose Timeout and
	// Control (TCP_MAXSEG) are set; nil means d.DialContext. Tests swap it
	// to dial from a network namespace or to see each connection.
	Dial func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

// Progress is a snapshot of a running probe.
type Progress struct {
	Phase       string
	Round       int
	Connections int
	Elapsed     time.Duration
}

// withDefaults fills what the caller left zero.
func (cfg Config) withDefaults() Config {
	if !supported {
		cfg.Portable = true
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TimeNow == nil {
		cfg.TimeNow = time.Now
	}
	if cfg.Dial == nil {
		cfg.Dial = func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		}
	}
	if cfg.Start.IsZero() {
		cfg.Start = cfg.TimeNow()
	}
	return cfg
}
