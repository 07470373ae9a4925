package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"
)

// Sizes of the resources the test nginx serves.
const (
	SmallSize = 100        // /small.txt
	LargeSize = 256 * 1024 // /large.bin: many full-size segments
)

// Nginx is Debian's nginx running in the server namespace: HTTPS on 443 and
// HTTP on 80, IPv4 and IPv6, with the RSA-4096 chain of TestCerts.
type Nginx struct {
	*Certs
	Host       *Host
	Dir        string // config, logs and document root
	ServerName string
	Proc       *Proc
}

// nginxPreamble starts every nginx configuration of the testbed: in the
// foreground, as root (so workers read the test's temporary files), with
// every path inside Dir and nothing written elsewhere. It leaves the http
// block open.
const nginxPreamble = `{{define "preamble"}}daemon off;
master_process on;
worker_processes 2;
user root;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 1024; }
http {
    access_log {{.Dir}}/access.log;
    client_body_temp_path {{.Dir}}/tmp/body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;
{{end}}`

const nginxConf = `{{template "preamble" .}}
    types {
        text/html html; text/plain txt; text/css css; application/javascript js;
        application/json json; image/png png; application/octet-stream bin;
    }
    default_type application/octet-stream;
    server {
        listen 443 ssl;
        listen [::]:443 ssl;
        listen 80;
        listen [::]:80;
        server_name {{.ServerName}};
        ssl_certificate {{.ChainFile}};
        ssl_certificate_key {{.KeyFile}};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {{.Dir}}/www;
    }
}
`

// StartNginx starts nginx on the net's server and waits until it accepts
// HTTPS connections on both families; it is stopped when the net closes.
func (n *Net) StartNginx(t testing.TB) *Nginx {
	t.Helper()
	RequireTools(t, "nginx")
	ng, err := n.startNginx(t.TempDir())
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	return ng
}

// StartNginxIn is StartNginx for commands outside tests (benchmark and
// capture generators): nginx keeps its files in dir, which the caller
// removes after closing the net.
func (n *Net) StartNginxIn(dir string) (*Nginx, error) { return n.startNginx(dir) }

func (n *Net) startNginx(dir string) (*Nginx, error) {
	c, err := TestCerts()
	if err != nil {
		return nil, err
	}
	ng := &Nginx{Certs: c, Host: n.Server, Dir: dir, ServerName: ServerName}
	if err := os.MkdirAll(filepath.Join(dir, "www"), 0o755); err != nil {
		return nil, err
	}
	small := bytes.Repeat([]byte("mtuscope\n"), SmallSize/9+1)[:SmallSize]
	large := make([]byte, LargeSize)
	rand.Read(large) // incompressible, so nothing along the way can shrink it
	for name, data := range map[string][]byte{"small.txt": small, "large.bin": large} {
		if err := os.WriteFile(filepath.Join(dir, "www", name), data, 0o644); err != nil {
			return nil, err
		}
	}
	if ng.Proc, err = startNginxProc(n.Server, dir, nginxConf, ng); err != nil {
		return nil, err
	}
	// Generous: on a machine loaded far past its cores, starting nginx and
	// an address's first answer take seconds; the wait ends at the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range []netip.Addr{n.Server.V4, n.Server.V6} {
		if err := ng.waitReady(ctx, a); err != nil {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			ng.Proc.Stop()
			return nil, fmt.Errorf("nginx not ready on %s: %v\nerror.log: %s\nstderr: %s", a, err, logs, ng.Proc.Stderr)
		}
	}
	return ng, nil
}

// startNginxProc writes the configuration made from tmpl and data (which
// must have a Dir field) into dir and starts nginx with it on h.
func startNginxProc(h *Host, dir, tmpl string, data any) (*Proc, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	var conf bytes.Buffer
	t := template.Must(template.New("preamble").Parse(nginxPreamble))
	if err := template.Must(t.New("conf").Parse(tmpl)).Execute(&conf, data); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return h.Start("nginx", "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
}

// waitReady polls, from inside the server namespace, until a TLS handshake
// with nginx on addr completes.
func (ng *Nginx) waitReady(ctx context.Context, addr netip.Addr) error {
	pool, err := ng.Pool()
	if err != nil {
		return err
	}
	for {
		select {
		case <-ng.Proc.Done():
			return fmt.Errorf("nginx exited: %v", ng.Proc.Wait())
		default:
		}
		c, err := ng.Host.DialContext(ctx, "tcp", ng.Addr(addr))
		if err == nil {
			tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: ServerName})
			err = tc.HandshakeContext(ctx)
			tc.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addr returns addr's HTTPS endpoint, "203.0.113.10:443" or "[2001:db8:300::10]:443".
func (ng *Nginx) Addr(addr netip.Addr) string {
	return net.JoinHostPort(addr.String(), "443")
}

// URL returns the https URL of path on the server's address of the family.
func (ng *Nginx) URL(family int, path string) string {
	return "https://" + ng.Addr(ng.Host.Addr(family)) + path
}

// HTTPURL returns the plain-http URL of path on the server's address of the family.
func (ng *Nginx) HTTPURL(family int, path string) string {
	return "http://" + net.JoinHostPort(ng.Host.Addr(family).String(), "80") + path
}

// TLSConfig returns a client configuration that trusts the test root.
func (ng *Nginx) TLSConfig() (*tls.Config, error) {
	pool, err := ng.Pool()
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, ServerName: ServerName}, nil
}

// CertPool returns a pool with the test root CA, or nil if it cannot be read.
func (ng *Nginx) CertPool() *x509.CertPool {
	p, _ := ng.Pool()
	return p
}

// AccessLog returns nginx's access log so far.
func (ng *Nginx) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(ng.Dir, "access.log"))
	return string(b)
}

// Curl returns curl arguments that fetch path over HTTPS from the family's
// server address, trusting the test root, with a total time limit.
func (ng *Nginx) Curl(family int, path string, maxTime time.Duration, extra ...string) []string {
	args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
		"--cacert", ng.CAFile, "--max-time", strconv.FormatFloat(maxTime.Seconds(), 'f', 1, 64)}
	args = append(args, extra...)
	return append(args, ng.URL(family, path))
}
