package middlebox

import (
	"log/slog"
)

// Config says which device Run puts where.
type Config struct {
	Kind Kind
	// Queue is the NFQUEUE queue number (per network namespace).
	Queue uint16
	// Iface is the interface facing the clients: packets forwarded in by
	// it go through the device. Empty installs no rules (the caller's own
	// iptables rules feed the queue).
	Iface string
	// MaxFlows bounds the flow table (DefaultMaxFlows when 0).
	MaxFlows int
	// Events receives the device's events, from Run's goroutine.
	Events func(Event)
	// Log is for what goes wrong along the way (slog.Default when nil).
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.Events == nil {
		c.Events = func(Event) {}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Event is one line of a running device's report (JSON, one per line, on
// cmd/mtuscope-middlebox's standard output).
type Event struct {
	// Event is "ready" (the device is in the path), "hello" (a ClientHello
	// was read), "packet" (a packet dropped outside a hello's reading) or
	// "stopped" (out of the path again).
	Event  string `json:"event"`
	Device Kind   `json:"device,omitempty"`
	// Client and Server are the flow's addresses and ports.
	Client string `json:"client,omitempty"`
	Server string `json:"server,omitempty"`
	// Action is "accept", "drop" or "reset", with the Reason for the last two.
	Action string `json:"action,omitempty"`
	Reason string `json:"reason,omitempty"`
	Hello  *Hello `json:"hello,omitempty"`
	// Counts, in "stopped": packets decided, dropped (resets included),
	// connections reset (once per reset sent), flows remembered at the end.
	Packets int `json:"packets,omitempty"`
	Dropped int `json:"dropped,omitempty"`
	Resets  int `json:"resets,omitempty"`
	Flows   int `json:"flows,omitempty"`
}
