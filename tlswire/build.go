package tlswire

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Group is a TLS named group (supported_groups code point).
type Group uint16

// Named groups the builder can offer key shares for.
const (
	GroupP256           Group = 0x0017
	GroupP384           Group = 0x0018
	GroupX25519         Group = 0x001d
	GroupX25519MLKEM768 Group = 0x11ec
)

func (g Group) String() string {
	switch g {
	case GroupP256:
		return "secp256r1"
	case GroupP384:
		return "secp384r1"
	case GroupX25519:
		return "x25519"
	case GroupX25519MLKEM768:
		return "X25519MLKEM768"
	}
	return fmt.Sprintf("0x%04x", uint16(g))
}

// Extension code points used here.
const (
	ExtServerName          = 0
	ExtSupportedGroups     = 10
	ExtECPointFormats      = 11
	ExtSignatureAlgorithms = 13
	ExtALPN                = 16
	ExtPadding             = 21
	ExtExtendedMasterSec   = 23
	ExtSupportedVersions   = 43
	ExtPSKModes            = 45
	ExtKeyShare            = 51
	ExtRenegotiationInfo   = 0xff01
)

// Cipher suites offered: the TLS 1.3 AES-GCM suites, and ECDHE AES-GCM for
// servers that only speak TLS 1.2.
var offeredSuites = []uint16{0x1301, 0x1302, 0xc02b, 0xc02f, 0xc02c, 0xc030}

var offeredSigAlgs = []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0807}

// MLDSASigAlgs are the ML-DSA signature algorithms (mldsa44, mldsa65,
// mldsa87: draft-ietf-tls-mldsa) that Chrome 150 and Go 1.27 offer and
// that some devices reset connections for.
var MLDSASigAlgs = []uint16{0x0904, 0x0905, 0x0906}

// ExtCookie is the TLS 1.3 cookie extension a HelloRetryRequest may carry.
const ExtCookie = 44

// MaxHelloSize is the largest ClientHello record Build makes: one record.
const MaxHelloSize = RecordHeaderLen + 1<<14

// HelloSpec says what ClientHello to build.
type HelloSpec struct {
	// ServerName goes into the SNI extension; an IP literal or "" sends none.
	ServerName string
	// Groups are offered in this order, each with a key share. Empty means
	// x25519 and secp256r1 (a small, classical hello). supported_groups
	// also lists x25519, secp256r1 and secp384r1 when not among them.
	Groups []Group
	// OfferOnly are groups listed in supported_groups, ahead of Groups,
	// without a key share: a server that prefers one of them answers with
	// a HelloRetryRequest for it (what OpenSSL 3.5 sends for a group not
	// marked with "*" in its Groups setting).
	OfferOnly []Group
	// NoKeyShares sends an empty key_share list: every TLS 1.3 server
	// answers with a HelloRetryRequest naming the group it wants.
	NoKeyShares bool
	// MLDSA appends the ML-DSA signature algorithms (MLDSASigAlgs) to
	// signature_algorithms.
	MLDSA bool
	// ALPN protocols to offer; none when empty.
	ALPN []string
	// Size is the wanted size of the whole record in bytes, 5-byte header
	// included; the padding extension (RFC 7685) makes up the difference.
	// 0 builds the hello at its natural size, without padding.
	Size int
}

// Hello is a built ClientHello and the private keys of its key shares.
type Hello struct {
	// Record is the complete TLS record, ready to write.
	Record []byte
	// SessionID is the random legacy_session_id, which also identifies this
	// hello to a cooperating server.
	SessionID []byte
	// Padding is the length of the padding extension's body, -1 when absent.
	Padding int
	// Groups are the groups offered with key shares.
	Groups []Group

	// Retry is the HelloRetryRequest this hello answers (its handshake
	// message), with the first hello's message; nil for a first hello.
	Retry *Retry

	spec   HelloSpec
	random []byte
	x25519 *ecdh.PrivateKey
	p256   *ecdh.PrivateKey
	mlkem  *mlkem.DecapsulationKey768
}

// Message returns the handshake message (the record without its header),
// which is what the TLS transcript hashes.
func (h *Hello) Message() []byte { return h.Record[RecordHeaderLen:] }

// ErrSize reports a wanted size the builder cannot make exactly.
var ErrSize = errors.New("tlswire: cannot build a ClientHello of that size")

// NaturalSize returns the record size of spec's hello without padding.
func NaturalSize(spec HelloSpec) (int, error) {
	s := spec
	s.Size = 0
	h, err := Build(s, rand.Reader)
	if err != nil {
		return 0, err
	}
	return len(h.Record), nil
}

// classicalGroups are offered in supported_groups by every hello, after the
// groups with key shares, as browsers do. Some servers (OpenSSL before 3.2
// with an ECDSA certificate) refuse a hello whose supported_groups lacks
// their certificate's curve, even in TLS 1.3: a hello offering only
// X25519MLKEM768 and x25519 would be refused for that, not for its size.
var classicalGroups = []Group{GroupX25519, GroupP256, GroupP384}

// supportedGroups returns the key-share groups followed by the classical
// groups not among them.
func supportedGroups(shares []Group) []Group {
	out := append([]Group(nil), shares...)
	for _, c := range classicalGroups {
		found := false
		for _, g := range shares {
			found = found || g == c
		}
		if !found {
			out = append(out, c)
		}
	}
	return out
}

// Build makes a ClientHello from spec, drawing randomness from rnd (key
// shares of ML-KEM draw from crypto/rand whatever rnd is). With spec.Size
// set, the record is exactly that many bytes, or Build fails with ErrSize:
// the size must be at least the natural size plus 4 (an empty padding
// extension), or exactly the natural size, and at most MaxHelloSize.
func Build(spec HelloSpec, rnd io.Reader) (*Hello, error) {
	groups := spec.Groups
	if len(groups) == 0 {
		groups = []Group{GroupX25519, GroupP256}
	}
	h := &Hello{Padding: -1, Groups: groups, SessionID: make([]byte, 32), random: make([]byte, 32), spec: spec}
	if _, err := io.ReadFull(rnd, h.random); err != nil {
		return nil, fmt.Errorf("tlswire: random: %w", err)
	}
	if _, err := io.ReadFull(rnd, h.SessionID); err != nil {
		return nil, fmt.Errorf("tlswire: session id: %w", err)
	}
	if spec.NoKeyShares {
		h.Groups = nil
	}
	if err := h.build(rnd, nil); err != nil {
		return nil, err
	}
	return h, nil
}

// build makes h.Record from h.spec with key shares for h.Groups; cookie is
// a HelloRetryRequest's cookie to echo.
func (h *Hello) build(rnd io.Reader, cookie []byte) error {
	spec := h.spec
	h.Padding = -1
	var shares []byte
	for _, g := range h.Groups {
		key, err := h.newShare(g, rnd)
		if err != nil {
			return err
		}
		shares = binary.BigEndian.AppendUint16(shares, uint16(g))
		shares = binary.BigEndian.AppendUint16(shares, uint16(len(key)))
		shares = append(shares, key...)
	}
	groups := spec.Groups
	if len(groups) == 0 {
		groups = []Group{GroupX25519, GroupP256}
	}

	var ext []byte
	if spec.ServerName != "" {
		if _, err := netip.ParseAddr(spec.ServerName); err != nil {
			if len(spec.ServerName) > 255 {
				return fmt.Errorf("tlswire: server name longer than 255 bytes")
			}
			var sni []byte
			sni = append(sni, 0) // host_name
			sni = appendVec16(sni, []byte(spec.ServerName))
			ext = appendExt(ext, ExtServerName, appendVec16(nil, sni))
		}
	}
	ext = appendExt(ext, ExtECPointFormats, []byte{1, 0})
	var gl []byte
	for _, g := range supportedGroups(append(append([]Group(nil), spec.OfferOnly...), groups...)) {
		gl = binary.BigEndian.AppendUint16(gl, uint16(g))
	}
	ext = appendExt(ext, ExtSupportedGroups, appendVec16(nil, gl))
	var sa []byte
	for _, a := range offeredSigAlgs {
		sa = binary.BigEndian.AppendUint16(sa, a)
	}
	if spec.MLDSA {
		for _, a := range MLDSASigAlgs {
			sa = binary.BigEndian.AppendUint16(sa, a)
		}
	}
	ext = appendExt(ext, ExtSignatureAlgorithms, appendVec16(nil, sa))
	if len(spec.ALPN) > 0 {
		var al []byte
		for _, p := range spec.ALPN {
			if p == "" || len(p) > 255 {
				return fmt.Errorf("tlswire: bad ALPN protocol %q", p)
			}
			al = append(al, byte(len(p)))
			al = append(al, p...)
		}
		ext = appendExt(ext, ExtALPN, appendVec16(nil, al))
	}
	ext = appendExt(ext, ExtExtendedMasterSec, nil)
	ext = appendExt(ext, ExtRenegotiationInfo, []byte{0})
	ext = appendExt(ext, ExtSupportedVersions, []byte{4, 0x03, 0x04, 0x03, 0x03})
	ext = appendExt(ext, ExtPSKModes, []byte{1, 1})
	if cookie != nil {
		ext = appendExt(ext, ExtCookie, appendVec16(nil, cookie))
	}
	ext = appendExt(ext, ExtKeyShare, appendVec16(nil, shares))

	var body []byte
	body = append(body, 0x03, 0x03)
	body = append(body, h.random...)
	body = append(body, byte(len(h.SessionID)))
	body = append(body, h.SessionID...)
	var cs []byte
	for _, s := range offeredSuites {
		cs = binary.BigEndian.AppendUint16(cs, s)
	}
	body = appendVec16(body, cs)
	body = append(body, 1, 0) // compression: null only

	natural := RecordHeaderLen + 4 + len(body) + 2 + len(ext)
	if spec.Size != 0 && spec.Size != natural {
		pad := spec.Size - natural - 4
		if pad < 0 || spec.Size > MaxHelloSize {
			return fmt.Errorf("%w: %d bytes wanted, natural size %d (so %d or %d..%d)",
				ErrSize, spec.Size, natural, natural, natural+4, MaxHelloSize)
		}
		ext = appendExt(ext, ExtPadding, make([]byte, pad))
		h.Padding = pad
	}
	if natural > MaxHelloSize {
		return fmt.Errorf("%w: natural size %d exceeds one record", ErrSize, natural)
	}
	body = appendVec16(body, ext)

	rec := make([]byte, 0, RecordHeaderLen+4+len(body))
	if h.Retry == nil {
		rec = append(rec, RecordHandshake, 0x03, 0x01)
	} else {
		// Records after the first hello carry 0x0303 (RFC 8446 section 5.1).
		rec = append(rec, RecordHandshake, 0x03, 0x03)
	}
	rec = binary.BigEndian.AppendUint16(rec, uint16(4+len(body)))
	rec = append(rec, TypeClientHello, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
	rec = append(rec, body...)
	h.Record = rec
	return nil
}

func (h *Hello) newShare(g Group, rnd io.Reader) ([]byte, error) {
	switch g {
	case GroupX25519:
		if h.x25519 == nil {
			k, err := ecdh.X25519().GenerateKey(rnd)
			if err != nil {
				return nil, fmt.Errorf("tlswire: x25519 key: %w", err)
			}
			h.x25519 = k
		}
		return h.x25519.PublicKey().Bytes(), nil
	case GroupP256:
		k, err := ecdh.P256().GenerateKey(rnd)
		if err != nil {
			return nil, fmt.Errorf("tlswire: p256 key: %w", err)
		}
		h.p256 = k
		return k.PublicKey().Bytes(), nil
	case GroupX25519MLKEM768:
		dk, err := mlkem.GenerateKey768()
		if err != nil {
			return nil, fmt.Errorf("tlswire: ml-kem key: %w", err)
		}
		h.mlkem = dk
		if h.x25519 == nil {
			k, err := ecdh.X25519().GenerateKey(rnd)
			if err != nil {
				return nil, fmt.Errorf("tlswire: x25519 key: %w", err)
			}
			h.x25519 = k
		}
		return append(dk.EncapsulationKey().Bytes(), h.x25519.PublicKey().Bytes()...), nil
	}
	return nil, fmt.Errorf("tlswire: no key share support for group %v", g)
}

// sharedSecret combines the server's key share with ours.
func (h *Hello) sharedSecret(g Group, peer []byte) ([]byte, error) {
	switch g {
	case GroupX25519:
		if h.x25519 == nil {
			break
		}
		pub, err := ecdh.X25519().NewPublicKey(peer)
		if err != nil {
			return nil, fmt.Errorf("tlswire: server x25519 share: %w", err)
		}
		return h.x25519.ECDH(pub)
	case GroupP256:
		if h.p256 == nil {
			break
		}
		pub, err := ecdh.P256().NewPublicKey(peer)
		if err != nil {
			return nil, fmt.Errorf("tlswire: server p256 share: %w", err)
		}
		return h.p256.ECDH(pub)
	case GroupX25519MLKEM768:
		if h.mlkem == nil || len(peer) != mlkem.CiphertextSize768+32 {
			break
		}
		ss, err := h.mlkem.Decapsulate(peer[:mlkem.CiphertextSize768])
		if err != nil {
			return nil, fmt.Errorf("tlswire: ml-kem decapsulate: %w", err)
		}
		pub, err := ecdh.X25519().NewPublicKey(peer[mlkem.CiphertextSize768:])
		if err != nil {
			return nil, fmt.Errorf("tlswire: server x25519 share: %w", err)
		}
		xs, err := h.x25519.ECDH(pub)
		if err != nil {
			return nil, err
		}
		return append(ss, xs...), nil
	}
	return nil, fmt.Errorf("tlswire: server chose group %v without a usable share", g)
}

func appendVec16(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func appendExt(b []byte, typ uint16, body []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, typ)
	return appendVec16(b, body)
}

// SplitRecord returns a handshake record's message carried in two records
// instead of one, the first holding at bytes of it, as RFC 8446 section 5.1
// allows (a handshake message may span records). A reader that takes one
// record for the whole hello fails on it.
func SplitRecord(rec []byte, at int) ([]byte, error) {
	h, err := ParseRecordHeader(rec)
	if err != nil {
		return nil, err
	}
	if h.Type != RecordHandshake || len(rec) != RecordHeaderLen+h.Length {
		return nil, fmt.Errorf("%w: not one whole handshake record", ErrMalformed)
	}
	if at <= 0 || at >= h.Length {
		return nil, fmt.Errorf("tlswire: split at %d of a %d-byte message", at, h.Length)
	}
	msg := rec[RecordHeaderLen:]
	out := make([]byte, 0, len(rec)+RecordHeaderLen)
	for _, part := range [][]byte{msg[:at], msg[at:]} {
		out = append(out, RecordHandshake, rec[1], rec[2])
		out = binary.BigEndian.AppendUint16(out, uint16(len(part)))
		out = append(out, part...)
	}
	return out, nil
}
