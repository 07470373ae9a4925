package testnet

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ServerName is the DNS name in the test server's certificate. The
// certificate also covers ServerV4, ServerV6 and loopback.
const ServerName = "server.mtuscope.test"

// Certs are the files of the test PKI: a root CA, an RSA-4096 intermediate
// and an RSA-4096 leaf. The leaf plus intermediate make the server's first
// TLS flight about 3.5-4 KB: more than one full-size segment.
type Certs struct {
	Dir       string
	CAFile    string // PEM root certificate, for curl --cacert and RootCAs
	ChainFile string // PEM leaf then intermediate, for the server
	KeyFile   string // PEM leaf private key
}

// certsVersion changes whenever the PKI below changes shape, so a cache made
// by an older build is not reused.
const certsVersion = "v1"

var (
	certsOnce sync.Once
	certs     *Certs
	certsErr  error
)

// TestCerts returns the test PKI, made once and cached in the temporary
// directory across test processes (RSA-4096 keys take seconds to make); a
// cache that expires within a day is made anew.
func TestCerts() (*Certs, error) {
	certsOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "mtuscope-testcerts-"+certsVersion)
		c := certsIn(dir)
		if c.valid() {
			certs = c
			return
		}
		tmp, err := os.MkdirTemp(os.TempDir(), "mtuscope-testcerts-new-")
		if err != nil {
			certsErr = err
			return
		}
		if err := makeCerts(certsIn(tmp)); err != nil {
			os.RemoveAll(tmp)
			certsErr = fmt.Errorf("testnet: make certificates: %w", err)
			return
		}
		os.Chmod(tmp, 0o755)
		// Replace an expired cache; if another process won the race, use its.
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			os.RemoveAll(tmp)
		}
		certs = certsIn(dir)
		if !certs.valid() {
			certsErr = fmt.Errorf("testnet: certificates in %s are unusable", dir)
		}
	})
	return certs, certsErr
}

func certsIn(dir string) *Certs {
	return &Certs{Dir: dir, CAFile: filepath.Join(dir, "ca.pem"),
		ChainFile: filepath.Join(dir, "chain.pem"), KeyFile: filepath.Join(dir, "key.pem")}
}

// valid reports whether the files exist and the leaf is good for a day more.
func (c *Certs) valid() bool {
	if _, err := os.Stat(c.KeyFile); err != nil {
		return false
	}
	if _, err := os.Stat(c.CAFile); err != nil {
		return false
	}
	b, err := os.ReadFile(c.ChainFile)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	return err == nil && time.Until(leaf.NotAfter) > 24*time.Hour
}

// Pool returns a pool holding the root CA.
func (c *Certs) Pool() (*x509.CertPool, error) {
	b, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("testnet: no certificate in %s", c.CAFile)
	}
	return p, nil
}

func makeCerts(c *Certs) error {
	now := time.Now().Add(-time.Hour)
	end := now.Add(30 * 24 * time.Hour)
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mtuscope test root CA"},
		NotBefore: now, NotAfter: end, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	interKey, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		return err
	}
	inter := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "mtuscope test intermediate CA, RSA-4096", Organization: []string{"mtuscope test PKI"}},
		NotBefore: now, NotAfter: end, IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	interDER, err := x509.CreateCertificate(rand.Reader, inter, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(3),
		Subject:   pkix.Name{CommonName: ServerName, Organization: []string{"mtuscope test PKI"}},
		NotBefore: now, NotAfter: end, DNSNames: []string{ServerName},
		IPAddresses: []net.IP{ServerV4.AsSlice(), ServerV6.AsSlice(), net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, inter, &leafKey.PublicKey, interKey)
	if err != nil {
		return err
	}
	pemOf := func(typ string, der ...[]byte) []byte {
		var out []byte
		for _, d := range der {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
		}
		return out
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{c.CAFile, pemOf("CERTIFICATE", rootDER)},
		{c.ChainFile, pemOf("CERTIFICATE", leafDER, interDER)},
		{c.KeyFile, pemOf("PRIVATE KEY", keyDER)},
	} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
