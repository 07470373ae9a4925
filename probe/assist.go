package probe

import "context"

// Assistant is a cooperating mtuscope server (the serve command implements
// it) that reports what it received, so a run can compare what was sent
// with what arrived. The probe works without one.
type Assistant interface {
	// Connection returns what the server saw of the connection whose
	// ClientHello carried sessionID (32 bytes, random per hello).
	Connection(ctx context.Context, sessionID []byte) (ServerObservation, error)
	// UDPEcho has the server send back a datagram making an IP packet of
	// size bytes, with Don't Fragment unless fragment is set: it tests the
	// server-to-client direction, which a plain server cannot.
	UDPEcho(ctx context.Context, size int, fragment bool) (UDPEchoResult, error)
}

// ServerObservation is the server's side of one connection.
type ServerObservation struct {
	// SYNMSS is the MSS option of the SYN as it arrived (after any clamp).
	SYNMSS int
	// HelloBytes and HelloSHA256 describe the ClientHello record as it
	// arrived; a difference from what was sent means it was rewritten.
	HelloBytes  int
	HelloSHA256 [32]byte
	// Retrans and PMTU are the server's TCP_INFO for the connection.
	Retrans int
	PMTU    int
}

// UDPEchoResult is the outcome of one UDPEcho.
type UDPEchoResult struct {
	Arrived bool // the server received the request
	Echoed  bool // its answer arrived here
}
