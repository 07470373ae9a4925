package tlswire

import (
	"errors"
	"fmt"
)

// ErrMalformed reports a handshake message whose fields do not add up.
var ErrMalformed = errors.New("tlswire: malformed handshake message")

// Extension is one extension as it appeared on the wire.
type Extension struct {
	Type   uint16 `json:"type"`
	Length int    `json:"length"`
}

// ClientHello is what a parsed ClientHello says about its sender.
type ClientHello struct {
	// Size is the handshake message size in bytes (4-byte header included);
	// the record that carried it adds 5 when it came in one record.
	Size              int
	Version           uint16
	SessionID         []byte
	CipherSuites      []uint16
	Extensions        []Extension
	ServerName        string
	Groups            []Group
	KeyShareGroups    []Group
	SupportedVersions []uint16
	ALPN              []string
	// SignatureAlgorithms lists signature_algorithms in order.
	SignatureAlgorithms []uint16
	// Padding is the padding extension's body length, -1 when absent.
	Padding int
}

// ParseClientHello decodes a ClientHello handshake message (type byte and
// 3-byte length included, as in the transcript).
func ParseClientHello(msg []byte) (*ClientHello, error) {
	r := reader{msg}
	var typ uint8
	var n int
	if !r.u8(&typ) || !r.u24(&n) {
		return nil, ErrShort
	}
	if typ != TypeClientHello {
		return nil, fmt.Errorf("%w: type %d is not a ClientHello", ErrMalformed, typ)
	}
	var body []byte
	if !r.bytes(n, &body) {
		return nil, ErrShort
	}
	ch := &ClientHello{Size: 4 + n, Padding: -1}
	b := reader{body}
	var random, suites, comp []byte
	if !b.u16(&ch.Version) || !b.bytes(32, &random) || !b.vec8(&ch.SessionID) ||
		!b.vec16(&suites) || !b.vec8(&comp) {
		return nil, fmt.Errorf("%w: fixed fields", ErrMalformed)
	}
	if len(suites)%2 != 0 {
		return nil, fmt.Errorf("%w: odd cipher suite list", ErrMalformed)
	}
	for i := 0; i+1 < len(suites); i += 2 {
		ch.CipherSuites = append(ch.CipherSuites, uint16(suites[i])<<8|uint16(suites[i+1]))
	}
	if b.empty() {
		return ch, nil
	}
	var exts []byte
	if !b.vec16(&exts) || !b.empty() {
		return nil, fmt.Errorf("%w: extensions block", ErrMalformed)
	}
	e := reader{exts}
	for !e.empty() {
		var et uint16
		var ed []byte
		if !e.u16(&et) || !e.vec16(&ed) {
			return nil, fmt.Errorf("%w: extension header", ErrMalformed)
		}
		ch.Extensions = append(ch.Extensions, Extension{Type: et, Length: len(ed)})
		if err := ch.parseExtension(et, ed); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

func (ch *ClientHello) parseExtension(typ uint16, data []byte) error {
	d := reader{data}
	bad := func(what string) error { return fmt.Errorf("%w: %s extension", ErrMalformed, what) }
	switch typ {
	case ExtServerName:
		var list []byte
		if !d.vec16(&list) {
			return bad("server_name")
		}
		l := reader{list}
		for !l.empty() {
			var nt uint8
			var name []byte
			if !l.u8(&nt) || !l.vec16(&name) {
				return bad("server_name")
			}
			if nt == 0 && ch.ServerName == "" {
				ch.ServerName = string(name)
			}
		}
	case ExtSupportedGroups:
		var list []byte
		if !d.vec16(&list) || len(list)%2 != 0 {
			return bad("supported_groups")
		}
		for i := 0; i+1 < len(list); i += 2 {
			ch.Groups = append(ch.Groups, Group(uint16(list[i])<<8|uint16(list[i+1])))
		}
	case ExtKeyShare:
		var list []byte
		if !d.vec16(&list) {
			return bad("key_share")
		}
		l := reader{list}
		for !l.empty() {
			var g uint16
			var key []byte
			if !l.u16(&g) || !l.vec16(&key) {
				return bad("key_share")
			}
			ch.KeyShareGroups = append(ch.KeyShareGroups, Group(g))
		}
	case ExtSupportedVersions:
		var list []byte
		if !d.vec8(&list) || len(list)%2 != 0 {
			return bad("supported_versions")
		}
		for i := 0; i+1 < len(list); i += 2 {
			ch.SupportedVersions = append(ch.SupportedVersions, uint16(list[i])<<8|uint16(list[i+1]))
		}
	case ExtALPN:
		var list []byte
		if !d.vec16(&list) {
			return bad("alpn")
		}
		l := reader{list}
		for !l.empty() {
			var p []byte
			if !l.vec8(&p) {
				return bad("alpn")
			}
			ch.ALPN = append(ch.ALPN, string(p))
		}
	case ExtSignatureAlgorithms:
		var list []byte
		if !d.vec16(&list) || len(list)%2 != 0 {
			return bad("signature_algorithms")
		}
		for i := 0; i+1 < len(list); i += 2 {
			ch.SignatureAlgorithms = append(ch.SignatureAlgorithms, uint16(list[i])<<8|uint16(list[i+1]))
		}
	case ExtPadding:
		ch.Padding = len(data)
	}
	return nil
}

// ServerHello is what the server chose.
type ServerHello struct {
	// Version is the negotiated version: supported_versions when present
	// (0x0304 for TLS 1.3), legacy_version otherwise.
	Version     uint16
	CipherSuite uint16
	// KeyShare is the server's key share (TLS 1.3), empty otherwise.
	Group    Group
	KeyShare []byte
	// RetryRequest is true for a HelloRetryRequest (RFC 8446 section 4.1.3).
	RetryRequest bool
	// Cookie is a HelloRetryRequest's cookie, nil without one.
	Cookie []byte
}

// helloRetryRandom marks a ServerHello as a HelloRetryRequest.
var helloRetryRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// IsHelloRetryRandom reports whether a ServerHello's random (32 bytes)
// marks it as a HelloRetryRequest.
func IsHelloRetryRandom(random []byte) bool {
	return len(random) == len(helloRetryRandom) && [32]byte(random) == helloRetryRandom
}

// ParseServerHello decodes a ServerHello handshake message (header included).
func ParseServerHello(msg []byte) (*ServerHello, error) {
	r := reader{msg}
	var typ uint8
	var n int
	if !r.u8(&typ) || !r.u24(&n) {
		return nil, ErrShort
	}
	if typ != TypeServerHello {
		return nil, fmt.Errorf("%w: type %d is not a ServerHello", ErrMalformed, typ)
	}
	var body []byte
	if !r.bytes(n, &body) {
		return nil, ErrShort
	}
	b := reader{body}
	sh := &ServerHello{}
	var random, sid []byte
	var comp uint8
	if !b.u16(&sh.Version) || !b.bytes(32, &random) || !b.vec8(&sid) || !b.u16(&sh.CipherSuite) || !b.u8(&comp) {
		return nil, fmt.Errorf("%w: ServerHello fixed fields", ErrMalformed)
	}
	sh.RetryRequest = [32]byte(random) == helloRetryRandom
	if b.empty() {
		return sh, nil
	}
	var exts []byte
	if !b.vec16(&exts) || !b.empty() {
		return nil, fmt.Errorf("%w: ServerHello extensions block", ErrMalformed)
	}
	e := reader{exts}
	for !e.empty() {
		var et uint16
		var ed []byte
		if !e.u16(&et) || !e.vec16(&ed) {
			return nil, fmt.Errorf("%w: ServerHello extension header", ErrMalformed)
		}
		d := reader{ed}
		switch et {
		case ExtSupportedVersions:
			var v uint16
			if !d.u16(&v) {
				return nil, fmt.Errorf("%w: ServerHello supported_versions", ErrMalformed)
			}
			sh.Version = v
		case ExtKeyShare:
			var g uint16
			if !d.u16(&g) {
				return nil, fmt.Errorf("%w: ServerHello key_share", ErrMalformed)
			}
			sh.Group = Group(g)
			if !sh.RetryRequest && !d.vec16(&sh.KeyShare) {
				return nil, fmt.Errorf("%w: ServerHello key_share", ErrMalformed)
			}
		case ExtCookie:
			if !d.vec16(&sh.Cookie) || len(sh.Cookie) == 0 {
				return nil, fmt.Errorf("%w: HelloRetryRequest cookie", ErrMalformed)
			}
		}
	}
	return sh, nil
}
