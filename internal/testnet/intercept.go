package testnet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Interceptor is nginx on one client network's r1 that terminates the TLS
// connections clients open to the server's ports and re-originates them to
// the server: a TLS-inspecting middlebox. Clients must trust CAFile (or not
// verify) to talk through it; the server sees the interceptor's own
// ClientHello, from r1's middle-link address.
type Interceptor struct {
	Host   *Host
	Dir    string
	CAFile string // the interceptor's self-signed certificate, PEM
	Ports  []int
	Proc   *Proc
}

const interceptConf = `{{template "preamble" .}}
    client_max_body_size 16m;
    ssl_certificate {{.Dir}}/cert.pem;
    ssl_certificate_key {{.Dir}}/key.pem;
{{- range .Ports}}
    server {
        listen {{.}} ssl;
        location / { proxy_pass https://{{$.V4}}:{{.}}; include {{$.Dir}}/proxy.conf; }
    }
    server {
        listen [::]:{{.}} ssl;
        location / { proxy_pass https://[{{$.V6}}]:{{.}}; include {{$.Dir}}/proxy.conf; }
    }
{{- end}}
}
`

const interceptProxyConf = `proxy_http_version 1.1;
proxy_set_header Host $http_host;
proxy_set_header Connection "";
proxy_ssl_server_name on;
proxy_ssl_name $ssl_server_name;
proxy_ssl_verify off;
`

// StartInterceptor puts an Interceptor on R1[network] for the given server
// ports and redirects the client network's connections to those ports into
// it. It is stopped when the net closes.
func (n *Net) StartInterceptor(t testing.TB, network int, ports ...int) *Interceptor {
	t.Helper()
	RequireTools(t, "nginx")
	if network < 0 || network >= len(n.R1) || len(ports) == 0 {
		t.Fatalf("testnet: StartInterceptor(network %d, ports %v): no such network or no port", network, ports)
	}
	ic, err := n.startInterceptor(t.TempDir(), n.R1[network], ports)
	if err != nil {
		t.Fatalf("testnet: interceptor: %v", err)
	}
	return ic
}

func (n *Net) startInterceptor(dir string, r1 *Host, ports []int) (*Interceptor, error) {
	ic := &Interceptor{Host: r1, Dir: dir, CAFile: filepath.Join(dir, "cert.pem"), Ports: ports}
	if err := writeInterceptorCert(dir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "proxy.conf"), []byte(interceptProxyConf), 0o644); err != nil {
		return nil, err
	}
	var err error
	ic.Proc, err = startNginxProc(r1, dir, interceptConf, map[string]any{
		"Dir": dir, "Ports": ports, "V4": n.Server.V4, "V6": n.Server.V6})
	if err != nil {
		return nil, err
	}
	if err := ic.waitListening(ports[0]); err != nil {
		logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		ic.Proc.Stop()
		return nil, fmt.Errorf("nginx on %s: %v\n%s%s", r1.Name, err, logs, ic.Proc.Stderr)
	}
	var list []string
	for _, p := range ports {
		list = append(list, fmt.Sprint(p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Connections from the client LAN to those ports end at r1 instead.
	rules := fmt.Sprintf("table inet mtuscope_intercept {\n  chain pre {\n"+
		"    type nat hook prerouting priority dstnat; policy accept;\n"+
		"    iifname \"lan\" tcp dport { %s } redirect\n  }\n}\n", strings.Join(list, ", "))
	if err := r1.nft(ctx, rules); err != nil {
		ic.Proc.Stop()
		return nil, err
	}
	return ic, nil
}

func (ic *Interceptor) waitListening(port int) error {
	for try := 0; try < 200; try++ {
		select {
		case <-ic.Proc.Done():
			return fmt.Errorf("exited: %v", ic.Proc.Wait())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := ic.Host.DialContext(ctx, "tcp", net.JoinHostPort(ic.Host.V4.String(), fmt.Sprint(port)))
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("not listening on port %d", port)
}

// AccessLog returns the interceptor's access log so far.
func (ic *Interceptor) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(ic.Dir, "access.log"))
	return string(b)
}

// writeInterceptorCert makes the interceptor's self-signed ECDSA certificate
// for the server's name and addresses, as a real inspecting proxy forges one.
func writeInterceptorCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: ServerName, Organization: []string{"mtuscope test interceptor"}},
		NotBefore: now, NotAfter: now.Add(7 * 24 * time.Hour), DNSNames: []string{ServerName},
		IPAddresses: []net.IP{ServerV4.AsSlice(), ServerV6.AsSlice()},
		IsCA:        true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
}
