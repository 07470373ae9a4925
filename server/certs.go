package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// Files of the self-signed certificate in the data directory.
const (
	selfCertFile = "selfsigned-cert.pem"
	selfKeyFile  = "selfsigned-key.pem"
)

// certSource is where the server's certificates come from.
type certSource struct {
	getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	acme    *autocert.Manager // nil unless ACME is configured
	// SelfSigned names the certificate file when it was made here.
	SelfSigned string
}

// loadCerts returns the certificate source cfg asks for: files, ACME, or a
// self-signed certificate made on first start and kept in dataDir.
func loadCerts(cfg *Config, dataDir string) (*certSource, error) {
	t := cfg.TLS
	switch {
	case len(t.ACMEHosts) > 0:
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(t.ACMEHosts...),
			Cache:      autocert.DirCache(filepath.Join(dataDir, "acme")),
			Email:      t.ACMEEmail,
		}
		if t.ACMEDirectory != "" {
			m.Client = &acme.Client{DirectoryURL: t.ACMEDirectory}
		}
		return &certSource{getCert: m.GetCertificate, acme: m}, nil
	case t.CertFile != "":
		c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		return &certSource{getCert: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }}, nil
	}
	certFile, keyFile := filepath.Join(dataDir, selfCertFile), filepath.Join(dataDir, selfKeyFile)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if errors.Is(err, os.ErrNotExist) {
		if err = makeSelfSigned(cfg, certFile, keyFile); err == nil {
			c, err = tls.LoadX509KeyPair(certFile, keyFile)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("self-signed certificate in %s: %w", dataDir, err)
	}
	return &certSource{SelfSigned: certFile,
		getCert: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }}, nil
}

// makeSelfSigned writes an ECDSA P-256 certificate for the configured
// names, this host's name, loopback and the rung addresses.
func makeSelfSigned(cfg *Config, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "mtuscope self-signed"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	for _, h := range append([]string{cfg.HostnameV4, cfg.HostnameV6}, cfg.Rungs.Addresses...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certFile), 0o750); err != nil {
		return err
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
