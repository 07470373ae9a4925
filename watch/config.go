// Package watch runs the passive monitor: packets from a live interface or
// capture files, through the decoder and the flow tracker, into the
// monitor, and out to metrics, alert receivers, the handshake log, the
// database and the operator view on the admin listener.
package watch

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/mtuscope/mtuscope/internal/strictyaml"
	"github.com/mtuscope/mtuscope/monitor"
)

// Config is everything `mtuscope watch` can be told. Zero fields take
// their defaults (see Defaults); a config file sets fields by their yaml
// names, and unknown names are errors.
type Config struct {
	// Interface is the network interface to capture on ("any" for all).
	Interface string `yaml:"interface"`
	// Ports are the TLS server ports watched.
	Ports []int `yaml:"ports"`
	// Admin is the admin listener: metrics, health, the operator view
	// ("" disables it).
	Admin string `yaml:"admin"`
	// DataDir holds the database and the ASN database unless their paths
	// are set.
	DataDir     string `yaml:"data_dir"`
	Database    string `yaml:"database"`
	ASNDatabase string `yaml:"asn_database"`
	// Retention is how long buckets and resolved alerts stay in the database.
	Retention time.Duration `yaml:"retention"`
	// PageURL is the diagnostic page's address put in every alert.
	PageURL string `yaml:"page_url"`
	// Alertmanager is Alertmanager's base URL, Webhook a URL that gets
	// the alerts as JSON ("" disables each).
	Alertmanager string `yaml:"alertmanager"`
	Webhook      string `yaml:"webhook"`
	// HandshakeLog is a file that gets one JSON line per stalled or failed
	// handshake, "-" for standard output, "" for none.
	HandshakeLog string `yaml:"handshake_log"`
	// MaxFlows bounds the flow table; HandshakeTimeout is how long a
	// handshake may take, in packet time, before it is classified as it stands.
	MaxFlows         int           `yaml:"max_flows"`
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// Monitor holds the windows and thresholds of the alerting.
	Monitor monitor.Config `yaml:"monitor"`
}

// Defaults returns the configuration `mtuscope watch` runs with when told nothing.
func Defaults() Config {
	return Config{
		Ports: []int{443}, Admin: "127.0.0.1:9091", Retention: 14 * 24 * time.Hour,
		MaxFlows: 65536, HandshakeTimeout: 10 * time.Second, Monitor: monitor.Defaults(),
	}
}

// LoadConfig reads a YAML config file over the defaults. Unknown keys,
// several documents and values of the wrong type are errors naming the
// key and its line.
func LoadConfig(path string) (Config, error) {
	cfg := Defaults()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := strictyaml.Decode(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks the configuration and says what is wrong with it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Ports) == 0 {
		bad("ports: at least one port")
	}
	for _, p := range c.Ports {
		if p <= 0 || p > 65535 {
			bad("ports: %d is not a port", p)
		}
	}
	if c.Admin != "" {
		if _, p, err := net.SplitHostPort(c.Admin); err != nil {
			bad("admin: %q is not host:port: %v", c.Admin, err)
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			bad("admin: bad port in %q", c.Admin)
		}
	}
	for name, u := range map[string]string{"page_url": c.PageURL, "alertmanager": c.Alertmanager, "webhook": c.Webhook} {
		if u == "" {
			continue
		}
		if x, err := url.Parse(u); err != nil || (x.Scheme != "http" && x.Scheme != "https") || x.Host == "" {
			bad("%s: %q is not an http(s) URL", name, u)
		}
	}
	if c.MaxFlows < 16 || c.MaxFlows > 1<<24 {
		bad("max_flows: %d is outside 16-16777216", c.MaxFlows)
	}
	if c.HandshakeTimeout < time.Second || c.HandshakeTimeout > 10*time.Minute {
		bad("handshake_timeout: %s is outside 1s-10m", c.HandshakeTimeout)
	}
	if c.Retention < time.Hour {
		bad("retention: %s is under an hour", c.Retention)
	}
	m := c.Monitor
	if m.Bucket < time.Second || m.Bucket > time.Hour {
		bad("monitor.bucket: %s is outside 1s-1h", m.Bucket)
	}
	if m.Window < 1 || m.Window > 1440 {
		bad("monitor.window: %d buckets is outside 1-1440", m.Window)
	}
	if m.History < 0 || m.History > 10080 {
		bad("monitor.history: %d buckets is outside 0-10080", m.History)
	}
	if m.Alpha <= 0 || m.Alpha >= 0.5 || m.ResolveAlpha <= m.Alpha || m.ResolveAlpha >= 1 {
		bad("monitor.alpha %g and resolve_alpha %g: want 0 < alpha < resolve_alpha < 1 and alpha < 0.5", m.Alpha, m.ResolveAlpha)
	}
	if m.MinDrop <= 0 || m.MinDrop >= 1 || m.ServerBreadth <= 0 || m.ServerBreadth > 1 {
		bad("monitor.min_drop %g / server_breadth %g: want within (0, 1)", m.MinDrop, m.ServerBreadth)
	}
	if m.MinStalls < 1 || m.MinOthers < 1 || m.ResolveAfter < 1 || m.ServerMin < 1 || m.Prior < 0 {
		bad("monitor: min_stalls, min_others, resolve_after and server_min must be positive, prior not negative")
	}
	if m.MaxNetworks < 1 || m.MaxNetworks > 1_000_000 || m.TopN < 1 || m.TopN > 1000 {
		bad("monitor: max_networks %d (1-1000000) / top_n %d (1-1000)", m.MaxNetworks, m.TopN)
	}
	return errors.Join(errs...)
}
