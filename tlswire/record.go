package tlswire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Record content types (RFC 8446 section 5.1).
const (
	RecordChangeCipherSpec = 20
	RecordAlert            = 21
	RecordHandshake        = 22
	RecordApplicationData  = 23
)

// Handshake message types (RFC 8446 section 4).
const (
	TypeClientHello         = 1
	TypeServerHello         = 2
	TypeEncryptedExtensions = 8
	TypeCertificate         = 11
	TypeServerKeyExchange   = 12
	TypeCertificateRequest  = 13
	TypeServerHelloDone     = 14
	TypeCertificateVerify   = 15
	TypeFinished            = 20
)

// RecordHeaderLen is the size of a TLS record header in bytes.
const RecordHeaderLen = 5

// MaxCiphertext is the largest record payload a peer may send (RFC 8446
// section 5.2: 2^14 plus 256 bytes of expansion).
const MaxCiphertext = 1<<14 + 256

// ErrShort reports input that ends before a length it announces.
var ErrShort = errors.New("tlswire: truncated input")

// RecordHeader is the 5-byte header in front of every TLS record.
type RecordHeader struct {
	Type    uint8
	Version uint16
	Length  int
}

// RecordStart reports whether b starts with a header that can begin a
// TLS record, and returns it: a known content type (20 to 23), version 3.0
// to 3.4 (SSL 3.0 to TLS 1.3; records of every TLS version say 3.x), and a
// length within MaxCiphertext. It is the one check of a record's start:
// package flow's tracker and package analyze read captured streams with
// it, and ParseRecordHeader decides with it. It does not allocate.
func RecordStart(b []byte) (RecordHeader, bool) {
	if len(b) < RecordHeaderLen {
		return RecordHeader{}, false
	}
	h := RecordHeader{Type: b[0], Version: binary.BigEndian.Uint16(b[1:3]), Length: int(binary.BigEndian.Uint16(b[3:5]))}
	ok := h.Type >= RecordChangeCipherSpec && h.Type <= RecordApplicationData &&
		b[1] == 3 && b[2] <= 4 && h.Length <= MaxCiphertext
	return h, ok
}

// IsClientHelloStart reports whether b starts with a ClientHello: a
// handshake record (RecordStart) whose message type is ClientHello, or an
// SSLv2-format CLIENT-HELLO (IsV2ClientHello).
func IsClientHelloStart(b []byte) bool {
	if h, ok := RecordStart(b); ok && h.Type == RecordHandshake && len(b) > RecordHeaderLen {
		return b[RecordHeaderLen] == TypeClientHello
	}
	return IsV2ClientHello(b)
}

// IsV2ClientHello reports whether b starts with an SSLv2-format
// CLIENT-HELLO (RFC 6101 appendix E, RFC 5246 appendix E.2): a two-byte
// header with the high bit set, message type 1, version 2.0 or 3.0 to
// 3.4.
func IsV2ClientHello(b []byte) bool {
	return len(b) >= 5 && b[0]&0x80 != 0 && b[2] == 1 && (b[3] == 0 && b[4] == 2 || b[3] == 3 && b[4] <= 4)
}

// ParseRecordHeader decodes the record header at the start of b. It fails
// when b is shorter than a header or when the header cannot start a TLS
// record (RecordStart).
func ParseRecordHeader(b []byte) (RecordHeader, error) {
	if len(b) < RecordHeaderLen {
		return RecordHeader{}, ErrShort
	}
	h, ok := RecordStart(b)
	if !ok {
		return h, &NotTLSError{Prefix: prefix(b)}
	}
	return h, nil
}

// NotTLSError reports bytes from a peer that cannot be TLS. Prefix holds the
// first bytes received (at most 32), which often name what the peer speaks
// instead ("SSH-2.0-...", "HTTP/1.1 400").
type NotTLSError struct {
	Prefix []byte
}

func (e *NotTLSError) Error() string {
	return fmt.Sprintf("tlswire: peer does not speak TLS (first bytes %q)", e.Prefix)
}

func prefix(b []byte) []byte {
	n := min(len(b), 32)
	return append([]byte(nil), b[:n]...)
}

// AlertError is a TLS alert received from the peer.
type AlertError struct {
	Level       uint8
	Description uint8
}

func (e *AlertError) Error() string {
	return fmt.Sprintf("tlswire: peer sent alert %d (%s)", e.Description, AlertName(e.Description))
}

// alertNames are the alert descriptions of the IANA TLS Alerts registry
// (RFC 8446, RFC 5246 and the registry's later additions), by code.
var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
	21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
	40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
	43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
	46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
	49: "access_denied", 50: "decode_error", 51: "decrypt_error",
	52: "too_many_cids_requested", 60: "export_restriction", 70: "protocol_version",
	71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
	90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
	110: "unsupported_extension", 111: "certificate_unobtainable", 112: "unrecognized_name",
	113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
	115: "unknown_psk_identity", 116: "certificate_required", 117: "general_error",
	120: "no_application_protocol", 121: "ech_required",
}

// AlertName returns the registered name of an alert description, or
// "alert_N" for a code the registry does not assign.
func AlertName(d uint8) string {
	if n, ok := alertNames[d]; ok {
		return n
	}
	return "alert_" + strconv.Itoa(int(d))
}

// reader is a bounds-checked cursor over a byte slice. Every method returns
// false instead of reading past the end.
type reader struct{ b []byte }

func (r *reader) empty() bool { return len(r.b) == 0 }

func (r *reader) u8(v *uint8) bool {
	if len(r.b) < 1 {
		return false
	}
	*v = r.b[0]
	r.b = r.b[1:]
	return true
}

func (r *reader) u16(v *uint16) bool {
	if len(r.b) < 2 {
		return false
	}
	*v = binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return true
}

func (r *reader) u24(v *int) bool {
	if len(r.b) < 3 {
		return false
	}
	*v = int(r.b[0])<<16 | int(r.b[1])<<8 | int(r.b[2])
	r.b = r.b[3:]
	return true
}

func (r *reader) bytes(n int, v *[]byte) bool {
	if n < 0 || len(r.b) < n {
		return false
	}
	*v = r.b[:n:n]
	r.b = r.b[n:]
	return true
}

// vec8 and vec16 read a vector with a 1- or 2-byte length prefix.
func (r *reader) vec8(v *[]byte) bool {
	var n uint8
	return r.u8(&n) && r.bytes(int(n), v)
}

func (r *reader) vec16(v *[]byte) bool {
	var n uint16
	return r.u16(&n) && r.bytes(int(n), v)
}
