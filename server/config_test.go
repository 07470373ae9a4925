package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValid(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	m := c.RungMSS()
	if len(m) != 31 || m[0] != 1220 || m[len(m)-1] != 1460 {
		t.Errorf("default rungs %v", m)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `
https: ":443"
http: ":80"
hostname_v4: v4.example.net
hostname_v6: v6.example.net
rungs:
  first: 1280
  last: 1460
  step: 4
  base_port: 10000
  down_base_port: 11000
echo:
  listen: ":9300"
  per_second: 5
  burst: 10
  token_ttl: 2m
reports:
  max_age: 720h
  max_total_mb: 256
  max_address_mb: 8
`
	c, err := LoadConfig(write(good))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.HTTPS != ":443" || c.Rungs.Step != 4 || c.Echo.TokenTTL != 2*time.Minute || c.Reports != (Reports{720 * time.Hour, 256, 8}) || c.PageMSS != 1220 || c.Admin != "127.0.0.1:9090" {
		t.Errorf("loaded %+v", c)
	}
	bad := map[string]string{
		"unknown key":        "htps: \":443\"\n",
		"unknown nested key": "rungs:\n  frist: 1200\n",
		"wrong type":         "page_mss: big\n",
		"two documents":      "http: \":80\"\n---\nhttp: \":81\"\n",
		"not yaml":           "{{{",
	}
	for name, s := range bad {
		if _, err := LoadConfig(write(s)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]func(*Config){
		"no https":              func(c *Config) { c.HTTPS = "" },
		"bad address":           func(c *Config) { c.HTTP = "localhost" },
		"bad port":              func(c *Config) { c.Admin = "127.0.0.1:99999" },
		"tiny page mss":         func(c *Config) { c.PageMSS = 100 },
		"zero step":             func(c *Config) { c.Rungs.Step = 0 },
		"first above last":      func(c *Config) { c.Rungs.First = 1500 },
		"too many rungs":        func(c *Config) { c.Rungs.Step = 1 },
		"addresses count":       func(c *Config) { c.Rungs.Addresses = []string{"192.0.2.1"} },
		"address not an ip":     func(c *Config) { c.Rungs.Step = 240; c.Rungs.Addresses = []string{"a", "b"} },
		"overlapping ports":     func(c *Config) { c.Rungs.DownBasePort = c.Rungs.BasePort + 3 },
		"cert without key":      func(c *Config) { c.TLS.CertFile = "x.pem" },
		"cert and acme":         func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ACMEHosts = "a", "b", []string{"h"} },
		"hostname with a slash": func(c *Config) { c.HostnameV4 = "a/b" },
		"zero limit":            func(c *Config) { c.Limits.ReportsPerMinute = 0 },
		"echo without rate":     func(c *Config) { c.Echo.PerSecond = 0 },
		"reports kept forever":  func(c *Config) { c.Reports.MaxAge = 0 },
		"reports without bound": func(c *Config) { c.Reports.MaxTotalMB = 0 },
		"address above total":   func(c *Config) { c.Reports.MaxAddressMB = c.Reports.MaxTotalMB + 1 },
	}
	for name, change := range cases {
		c := Defaults()
		change(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "%!") {
			t.Errorf("%s: garbled message %q", name, err)
		}
	}
}

// TestConfigErrorsNameKeyAndLine: a mistyped key or a bad value names the
// key's path and its line, not a Go type (it said "field htps not found in
// type server.Config").
func TestConfigErrorsNameKeyAndLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ in, want string }{
		{"htps: \":443\"\n", `line 1: htps: unknown key (did you mean "https"?)`},
		{"http: \":80\"\nrungs:\n  first: 1220\n  frist: 1200\n", `line 4: rungs.frist: unknown key (did you mean "first"?)`},
		{"page_mss: big\n", `line 1: page_mss: want a whole number, got "big"`},
		{"reports:\n  max_age: forever\n", `line 2: reports.max_age: want a duration`},
	} {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(tc.in), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "server.") {
			t.Errorf("%q: error %v, want one containing %q and no Go type", tc.in, err, tc.want)
		}
	}
}
