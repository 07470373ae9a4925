// Package api holds the wire types and paths of mtuscope serve's HTTP API,
// shared by the server and its clients; spec.md beside it is the protocol.
package api

import (
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/sockopt"
)

// Service and Version identify an mtuscope server in its capabilities.
const (
	Service = "mtuscope"
	Version = 1
)

// EchoWire names the UDP echo's datagram format (package echowire).
const EchoWire = "echowire/1"

// Paths of the probe-facing API.
const (
	// CapabilitiesPath answers Capabilities: what a client detects the
	// server by.
	CapabilitiesPath = "/.well-known/mtuscope.json"
	// WhoamiPath answers Whoami for the connection the request came on.
	WhoamiPath = "/api/v1/whoami"
	// ConnectionsPath, followed by a ClientHello's session ID in hex,
	// answers Observation.
	ConnectionsPath = "/api/v1/connections/"
	// UDPTokenPath answers UDPToken, over HTTPS only.
	UDPTokenPath = "/api/v1/udp-token"
	// ReportsPath takes a Submission (POST) and answers Submitted; the
	// operator lists reports with GET.
	ReportsPath = "/api/v1/reports"
	// ReportPagePath, followed by a report's ID, is the report's page.
	ReportPagePath = "/r/"
)

// Paths of the page's API (web/static/app.js).
const (
	PingPath     = "/api/v1/ping"
	SessionsPath = "/api/v1/sessions" // POST: a new session; + "/{id}/start", "/{id}/refine", "/{id}/result"
)

// Paths on each rung listener, besides the probe-facing ones: the page's
// steps.
const (
	RungHelloPath = "/t/hello" // a fresh TLS connection and a small answer
	RungDownPath  = "/t/down"  // a download larger than one segment
	RungUpPath    = "/t/up"    // POST: an upload larger than one segment
	RungClaimPath = "/t/claim" // a dual-stack check claims its second family's turn
	RungExactPath = "/t/exact" // plain HTTP: one segment of an exact size (ExactInfo without ?size=)
)

// Capabilities is the document at CapabilitiesPath: what this server
// offers, so that probe can detect it and run server-assisted.
type Capabilities struct {
	Service    string `json:"service"` // Service
	Version    string `json:"version"` // the server's software version
	API        int    `json:"api"`     // Version
	PagePath   string `json:"page_path"`
	PageMSS    int    `json:"page_mss"`
	WhoamiPath string `json:"whoami_path"`
	// ConnectionsPath + a ClientHello session ID in hex: Observation.
	ConnectionsPath string `json:"connections_path"`
	SubmitPath      string `json:"submit_path"`
	// TargetPort is the unclamped HTTPS listener for probe's own ladders.
	TargetPort int    `json:"target_port,omitempty"`
	Rungs      []Rung `json:"rungs"`
	// EchoPort is the UDP echo's port, EchoToken the path of its token
	// (UDPToken) and EchoWire its datagram format; all empty without one.
	EchoPort    int    `json:"echo_port,omitempty"`
	EchoToken   string `json:"echo_token_path,omitempty"`
	EchoWire    string `json:"echo_wire,omitempty"`
	MaxDownload int    `json:"max_download"`
}

// ExactInfo is the exact-size service's view of a connection
// (RungExactPath without a size): probe's portable mode reads the packet
// sizes it tested from it.
type ExactInfo struct {
	Family     int  `json:"family"`
	SYNMSS     int  `json:"syn_mss"`    // the MSS option of the client's SYN as it arrived
	SndMSS     int  `json:"snd_mss"`    // payload per segment the server sends
	RcvMSS     int  `json:"rcv_mss"`    // the largest payload received (the request's, when written in one piece)
	Timestamps bool `json:"timestamps"` // the timestamps option adds 12 bytes to every segment
	MaxSize    int  `json:"max_size"`   // the largest IP packet ?size= may ask for on this connection
}

// Rung is one MSS-clamped test listener of the page.
type Rung struct {
	MSS      int    `json:"mss"`
	Host     string `json:"host,omitempty"` // address mode: the rung's own address
	Port     int    `json:"port"`
	DownPort int    `json:"down_port,omitempty"`
}

// Whoami is what the server saw of the connection a request arrived on:
// probe compares it with what it sent to find MSS clamping on the path and
// ClientHellos rewritten by an intercepting proxy.
type Whoami struct {
	Client        string           `json:"client"`
	Family        int              `json:"family"`
	ListenerMSS   int              `json:"listener_mss"`
	SYNMSS        int              `json:"syn_mss"`
	HelloBytes    int              `json:"hello_bytes"`
	HelloSHA256   string           `json:"hello_sha256"`
	HelloRecBytes int              `json:"hello_record_bytes"`
	TCPInfo       *sockopt.TCPInfo `json:"tcp_info,omitempty"`
}

// Observation matches.
const (
	MatchSessionID = "session_id"
	MatchAddress   = "address"
)

// Observation is what the server saw of one earlier connection, for
// probe's server-assisted mode: found by the session ID its ClientHello
// carried, or else (Match MatchAddress) the latest connection from the
// address asking, which is what a TLS-intercepting proxy re-originates.
type Observation struct {
	Match       string `json:"match"` // MatchSessionID or MatchAddress
	Client      string `json:"client"`
	SYNMSS      int    `json:"syn_mss"`
	HelloBytes  int    `json:"hello_bytes"`  // the records that carried the hello, headers included
	HelloSHA256 string `json:"hello_sha256"` // of those records
	Retrans     int    `json:"retrans"`
	PMTU        int    `json:"pmtu"`
}

// UDPToken admits the address that fetched it to the UDP echo until
// Expires.
type UDPToken struct {
	Token   string    `json:"token"`
	Port    int       `json:"port"`
	Expires time.Time `json:"expires"`
}

// Submission is what `mtuscope probe --submit` posts to ReportsPath: the
// evidence it gathered, one entry per family. The server diagnoses it
// itself.
type Submission struct {
	Target   string              `json:"target"`
	Version  string              `json:"version,omitempty"`
	Evidence []diagnose.Evidence `json:"evidence"`
}

// Submitted is the answer to a Submission (and to the page's result): the
// stored report's ID, its page (ReportPagePath + ID) and the diagnosis of
// its first family.
type Submitted struct {
	ID        string             `json:"id"`
	URL       string             `json:"url"`
	Stored    bool               `json:"stored"`
	Verdict   diagnose.Verdict   `json:"verdict"`
	Direction diagnose.Direction `json:"direction"`
	PathMTU   int                `json:"path_mtu"`
}
