// Package assist is the client side of mtuscope serve's server-assisted
// mode: it finds out whether a target is an mtuscope server, asks it what
// it saw of probe's connections (the SYN's MSS, the ClientHello as it
// arrived), runs the UDP echo, and submits probe's results as a report.
// It implements probe.Assistant.
package assist

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/probe"
	"github.com/mtuscope/mtuscope/sockopt"
)

// smallMSS is the MSS of the assistant's own HTTPS connections: small
// enough that they cross the very black hole the probe looks for.
const smallMSS = 1200

// Client talks to one mtuscope server.
type Client struct {
	// Base is "https://host:port" of the server.
	Base string
	// Caps is the server's capabilities document.
	Caps api.Capabilities
	// Dial makes the TCP and UDP sockets (nil: net.Dialer).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	http     *http.Client
	mu       sync.Mutex
	token    string
	tokenExp time.Time
}

// ErrNotMtuscope is returned by Detect for a server that is not mtuscope's.
var ErrNotMtuscope = errors.New("not an mtuscope server")

// Detect fetches base's capabilities. The certificate is not verified:
// nothing secret crosses this channel, and a TLS-intercepting proxy (one of
// the things the probe is there to find) presents its own.
func Detect(ctx context.Context, base string, dial func(context.Context, string, string) (net.Conn, error)) (*Client, error) {
	if dial == nil {
		dial = (&net.Dialer{Control: sockopt.BestEffortMaxSeg(smallMSS)}).DialContext
	}
	c := &Client{Base: strings.TrimSuffix(base, "/"), Dial: dial}
	// A small ClientHello and a small MSS: this channel must work across
	// the black hole being diagnosed.
	tlsConf := &tls.Config{InsecureSkipVerify: true, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	tr := &http.Transport{TLSClientConfig: tlsConf, DialContext: dial,
		DisableKeepAlives: true, ResponseHeaderTimeout: 5 * time.Second}
	c.http = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	if err := c.getJSON(ctx, api.CapabilitiesPath, &c.Caps); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotMtuscope, err)
	}
	if c.Caps.Service != api.Service || c.Caps.API != api.Version {
		return nil, ErrNotMtuscope
	}
	return c, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return err
	}
	return c.do(req, http.StatusOK, v)
}

func (c *Client) do(req *http.Request, want int, v any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, e.Error)
	}
	return json.Unmarshal(b, v)
}

// Connection asks the server what it saw of the connection whose
// ClientHello carried sessionID.
func (c *Client) Connection(ctx context.Context, sessionID []byte) (probe.ServerObservation, error) {
	var o api.Observation
	path := c.Caps.ConnectionsPath
	if path == "" {
		return probe.ServerObservation{}, errors.New("the server offers no connection lookup")
	}
	if err := c.getJSON(ctx, path+hex.EncodeToString(sessionID), &o); err != nil {
		return probe.ServerObservation{}, err
	}
	out := probe.ServerObservation{SYNMSS: o.SYNMSS, HelloBytes: o.HelloBytes, Retrans: o.Retrans, PMTU: o.PMTU}
	h, err := hex.DecodeString(o.HelloSHA256)
	if err != nil || len(h) != 32 {
		return out, fmt.Errorf("the server's hello hash %q is not SHA-256", o.HelloSHA256)
	}
	copy(out.HelloSHA256[:], h)
	return out, nil
}

// Submit stores evidence on the server as a report and returns its URL.
// The server's certificate is verified against roots (nil: the system's).
func Submit(ctx context.Context, base, target string, evidence []diagnose.Evidence, roots *x509.CertPool) (string, error) {
	body, err := json.Marshal(api.Submission{Target: target, Evidence: evidence})
	if err != nil {
		return "", err
	}
	c := &Client{Base: strings.TrimSuffix(base, "/")}
	c.http = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext:     (&net.Dialer{Control: sockopt.BestEffortMaxSeg(smallMSS)}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: roots, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+api.ReportsPath, strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	var s api.Submitted
	if err := c.do(req, http.StatusCreated, &s); err != nil {
		return "", err
	}
	return c.Base + s.URL, nil
}

// ExactService returns the listener of the server's exact-size service:
// the rung with the largest MSS (its clamp caps the sizes it can test),
// on host ("" for the probe's target address), and that clamp. It
// implements probe.ExactService.
func (c *Client) ExactService() (host string, port, mss int, ok bool) {
	best := -1
	for i, r := range c.Caps.Rungs {
		if best < 0 || r.MSS > c.Caps.Rungs[best].MSS {
			best = i
		}
	}
	if best < 0 {
		return "", 0, 0, false
	}
	r := c.Caps.Rungs[best]
	return r.Host, r.Port, r.MSS, true
}
