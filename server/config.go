package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/mtuscope/mtuscope/internal/strictyaml"
)

// Config is everything `mtuscope serve` can be told. The zero value of a
// field means its default (see Defaults); a config file sets fields by
// their yaml names, and unknown names are errors.
type Config struct {
	// Listen addresses: the page over HTTPS and over plain HTTP (both
	// clamped to PageMSS), and the admin listener (metrics, health, and the
	// operator views when no token is set). "" disables HTTP or admin.
	HTTPS string `yaml:"https"`
	HTTP  string `yaml:"http"`
	Admin string `yaml:"admin"`
	// Target is an HTTPS listener without an MSS clamp, for `mtuscope
	// probe` to run its own MSS ladder and hello sweep against ("" disables).
	Target string `yaml:"target"`
	// PageMSS clamps the page's own listeners so the page loads through a
	// black hole: 1220 fits IPv6's minimum MTU.
	PageMSS int `yaml:"page_mss"`
	// DataDir holds the self-signed certificate, the reports database and
	// the ASN database unless their paths are set.
	DataDir     string `yaml:"data_dir"`
	Database    string `yaml:"database"`
	ASNDatabase string `yaml:"asn_database"`
	// Hostnames the page is reached at, per family; when both are set the
	// page tests both families. Empty: the host the page was loaded from.
	HostnameV4 string     `yaml:"hostname_v4"`
	HostnameV6 string     `yaml:"hostname_v6"`
	TLS        TLSConfig  `yaml:"tls"`
	Rungs      RungConfig `yaml:"rungs"`
	Echo       EchoConfig `yaml:"echo"`
	Limits     Limits     `yaml:"limits"`
	Reports    Reports    `yaml:"reports"`
	// Token guards the operator views and the report API on the public
	// listeners ($MTUSCOPE_TOKEN overrides). Empty: they are served only on
	// the admin listener.
	Token string `yaml:"token"`
	// Binaries is a directory of probe binaries as `make cross` leaves it
	// (mtuscope-OS-ARCH[.exe] and SHA256SUMS): served under /dl/, and a
	// report says how to run them. Empty: none.
	Binaries string `yaml:"binaries"`
}

// TLSConfig says where the certificate comes from: files, ACME, or (when
// neither is set) a self-signed certificate made on first start and kept
// in the data directory.
type TLSConfig struct {
	CertFile      string   `yaml:"cert_file"`
	KeyFile       string   `yaml:"key_file"`
	ACMEHosts     []string `yaml:"acme_hostnames"`
	ACMEEmail     string   `yaml:"acme_email"`
	ACMEDirectory string   `yaml:"acme_directory"` // ACME server URL; empty: Let's Encrypt
}

// RungConfig lays out the rung listeners: one HTTPS listener per MSS from
// First to Last by Step, each on its own port (BasePort+i) or on its own
// address (Addresses[i]:Port, for firewalls that pass only 443). Each rung
// also has a server-first probe listener (DownBasePort+i, or
// Addresses[i]:DownPort); 0 disables them.
type RungConfig struct {
	First        int      `yaml:"first"`
	Last         int      `yaml:"last"`
	Step         int      `yaml:"step"`
	BasePort     int      `yaml:"base_port"`
	DownBasePort int      `yaml:"down_base_port"`
	Addresses    []string `yaml:"addresses"`
	Port         int      `yaml:"port"`
	DownPort     int      `yaml:"down_port"`
	// RefineBasePort and RefinePorts are the ports a session's refinement
	// round borrows (one listener per size inside the bracket and one for
	// the exact-size downstream writes); RefinePorts 0 disables the round.
	// With BasePort 0 (tests) they are any free ports.
	RefineBasePort int `yaml:"refine_base_port"`
	RefinePorts    int `yaml:"refine_ports"`
}

// EchoConfig sets the UDP echo for probe's datagram tests.
type EchoConfig struct {
	Listen string `yaml:"listen"` // "" disables it
	// PerSecond and Burst bound the datagrams answered per source address.
	PerSecond float64       `yaml:"per_second"`
	Burst     int           `yaml:"burst"`
	TokenTTL  time.Duration `yaml:"token_ttl"`
}

// Limits bound what one client address may ask for.
type Limits struct {
	SessionsPerMinute float64 `yaml:"sessions_per_minute"`
	ReportsPerMinute  float64 `yaml:"reports_per_minute"`
	TestsPerSecond    float64 `yaml:"tests_per_second"`
	// Burst is how many requests beyond the rate one address may make at once.
	Burst int `yaml:"burst"`
}

// Reports bound what the stored reports take on disk: reports older than
// MaxAge go, and past MaxAddressMB for one client address (one /64 for
// IPv6) or MaxTotalMB for all, the oldest go first. A report's body is
// stored compressed, at most 256 KiB (store.MaxReportBytes).
type Reports struct {
	MaxAge       time.Duration `yaml:"max_age"`
	MaxTotalMB   int           `yaml:"max_total_mb"`
	MaxAddressMB int           `yaml:"max_address_mb"`
}

// MinTokenLen is the shortest operator token accepted.
const MinTokenLen = 20

// Defaults returns the configuration `mtuscope serve` runs with when told nothing.
func Defaults() Config {
	return Config{
		HTTPS: ":8443", HTTP: ":8080", Admin: "127.0.0.1:9090", Target: ":8444", PageMSS: 1220,
		Rungs: RungConfig{First: 1220, Last: 1460, Step: 8, BasePort: 9400, DownBasePort: 9500, Port: 443,
			RefineBasePort: 9600, RefinePorts: 400},
		Echo:    EchoConfig{Listen: ":9300", PerSecond: 20, Burst: 40, TokenTTL: 5 * time.Minute},
		Limits:  Limits{SessionsPerMinute: 20, ReportsPerMinute: 30, TestsPerSecond: 100, Burst: 100},
		Reports: Reports{MaxAge: 180 * 24 * time.Hour, MaxTotalMB: 1024, MaxAddressMB: 32},
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

// RungMSS returns the rungs' MSS values, lowest first.
func (c *Config) RungMSS() []int {
	var out []int
	for m := c.Rungs.First; m <= c.Rungs.Last && c.Rungs.Step > 0; m += c.Rungs.Step {
		out = append(out, m)
	}
	return out
}

// Validate checks the configuration and says what is wrong with it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for name, a := range map[string]string{"https": c.HTTPS, "http": c.HTTP, "admin": c.Admin, "target": c.Target, "echo.listen": c.Echo.Listen} {
		if a == "" && name == "https" {
			bad("https: the page needs an HTTPS listen address")
			continue
		}
		if a != "" {
			if _, p, err := net.SplitHostPort(a); err != nil {
				bad("%s: %q is not host:port: %v", name, a, err)
			} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
				bad("%s: bad port in %q", name, a)
			}
		}
	}
	if c.PageMSS < 536 || c.PageMSS > 9000 {
		bad("page_mss: %d is outside 536-9000", c.PageMSS)
	}
	r := c.Rungs
	switch {
	case r.Step <= 0:
		bad("rungs.step: %d must be positive", r.Step)
	case r.First < 536 || r.Last > 9000 || r.First > r.Last:
		bad("rungs: first %d and last %d must satisfy 536 <= first <= last <= 9000", r.First, r.Last)
	case (r.Last-r.First)/r.Step+1 > 200:
		bad("rungs: %d rungs, at most 200", (r.Last-r.First)/r.Step+1)
	}
	n := len(c.RungMSS())
	if len(r.Addresses) > 0 {
		if len(r.Addresses) != n {
			bad("rungs.addresses: %d addresses for %d rungs (first %d, last %d, step %d)", len(r.Addresses), n, r.First, r.Last, r.Step)
		}
		for _, a := range r.Addresses {
			if _, err := netip.ParseAddr(a); err != nil {
				bad("rungs.addresses: %q is not an IP address", a)
			}
		}
		if r.Port <= 0 || r.Port > 65535 || r.DownPort < 0 || r.DownPort > 65535 {
			bad("rungs.port %d / rungs.down_port %d out of range", r.Port, r.DownPort)
		}
	} else if r.BasePort < 0 || r.BasePort+n > 65536 || r.DownBasePort < 0 || r.DownBasePort+n > 65536 {
		bad("rungs.base_port %d / down_base_port %d: the %d rung ports do not fit", r.BasePort, r.DownBasePort, n)
	} else if r.BasePort > 0 && r.DownBasePort > 0 && r.DownBasePort < r.BasePort+n && r.BasePort < r.DownBasePort+n {
		bad("rungs: base_port %d and down_base_port %d ranges overlap", r.BasePort, r.DownBasePort)
	}
	if r.RefinePorts < 0 || r.RefinePorts > 4096 || r.RefineBasePort < 0 || r.RefineBasePort+r.RefinePorts > 65536 {
		bad("rungs.refine_base_port %d / refine_ports %d: out of range", r.RefineBasePort, r.RefinePorts)
	}
	if c.Token != "" && len(c.Token) < MinTokenLen {
		bad("token: %d characters, at least %d (for example: openssl rand -base64 24)", len(c.Token), MinTokenLen)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file go together")
	}
	if c.TLS.CertFile != "" && len(c.TLS.ACMEHosts) > 0 {
		bad("tls: certificate files and ACME exclude each other")
	}
	for _, h := range []string{c.HostnameV4, c.HostnameV6} {
		if _, err := netip.ParseAddr(h); err == nil {
			continue // an address, as --help says: IPv6 ones have colons
		}
		if h != "" && (len(h) > 253 || bytes.ContainsAny([]byte(h), " /:?#@")) {
			bad("hostname %q is not a host name", h)
		}
	}
	if c.Echo.Listen != "" && (c.Echo.PerSecond <= 0 || c.Echo.Burst <= 0 || c.Echo.TokenTTL <= 0) {
		bad("echo: per_second, burst and token_ttl must be positive")
	}
	l := c.Limits
	if l.SessionsPerMinute <= 0 || l.ReportsPerMinute <= 0 || l.TestsPerSecond <= 0 || l.Burst <= 0 {
		bad("limits: every limit must be positive")
	}
	if rp := c.Reports; rp.MaxAge < time.Hour || rp.MaxTotalMB <= 0 || rp.MaxAddressMB <= 0 || rp.MaxAddressMB > rp.MaxTotalMB {
		bad("reports: max_age %s must be at least 1h, max_total_mb %d and max_address_mb %d positive, the second at most the first",
			rp.MaxAge, rp.MaxTotalMB, rp.MaxAddressMB)
	}
	return errors.Join(errs...)
}
