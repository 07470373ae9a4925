package tlswire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// ErrHelloRetry reports a HelloRetryRequest: the server wants a key share
// for a group the hello did not carry one for.
var ErrHelloRetry = errors.New("tlswire: server sent a HelloRetryRequest")

// Message is one handshake message of the server's flight.
type Message struct {
	Type   uint8 `json:"type"`
	Length int   `json:"length"` // body length, header excluded
}

// Flight follows the server's first flight in answer to a Hello, record by
// record, until its last message: Finished for TLS 1.3 (which it decrypts
// with the handshake keys derived from the hello's key shares), or
// ServerHelloDone for TLS 1.2. It never sends anything; it only tells when
// everything the server had to say before the client's turn has arrived.
type Flight struct {
	hello *Hello

	// Bytes is the number of bytes fed so far, record headers included.
	Bytes int
	// Records is the number of complete records received.
	Records int
	// ServerHello is set once the ServerHello arrived.
	ServerHello *ServerHello
	// Messages lists the handshake messages received, in order.
	Messages []Message
	// Complete is set when the flight's last message arrived.
	Complete bool
	// CompleteBytes is the flight size in bytes when Complete.
	CompleteBytes int
	// RetryRequest is the HelloRetryRequest message when the server sent
	// one (Feed then returns ErrHelloRetry): Hello.AnswerRetry builds the
	// hello that answers it, and Rest holds what followed it.
	RetryRequest []byte

	buf     []byte // unparsed record bytes
	hs      []byte // unparsed handshake bytes
	aead    cipher.AEAD
	iv      []byte
	seq     uint64
	newHash func() hash.Hash
	trans   hash.Hash
}

// NewFlight returns a tracker for the server's answer to h.
func NewFlight(h *Hello) *Flight {
	return &Flight{hello: h}
}

// Feed consumes bytes received from the server. It returns true once the
// flight is complete; bytes after the flight are ignored. Errors are a
// *NotTLSError, an *AlertError, ErrHelloRetry, or a decoding failure; the
// tracker's fields keep what arrived before the error.
func (f *Flight) Feed(b []byte) (bool, error) {
	if f.Complete {
		return true, nil
	}
	f.Bytes += len(b)
	f.buf = append(f.buf, b...)
	for len(f.buf) >= RecordHeaderLen {
		h, err := ParseRecordHeader(f.buf)
		if err != nil {
			var nt *NotTLSError
			if errors.As(err, &nt) && f.Records > 0 {
				return false, fmt.Errorf("%w: bad record header after %d records", ErrMalformed, f.Records)
			}
			return false, err
		}
		if len(f.buf) < RecordHeaderLen+h.Length {
			return false, nil
		}
		rec := f.buf[:RecordHeaderLen+h.Length]
		f.buf = f.buf[len(rec):]
		f.Records++
		if err := f.record(h, rec); err != nil {
			return false, err
		}
		if f.Complete {
			f.CompleteBytes = f.Bytes - len(f.buf)
			return true, nil
		}
	}
	return false, nil
}

func (f *Flight) record(h RecordHeader, rec []byte) error {
	payload := rec[RecordHeaderLen:]
	switch h.Type {
	case RecordChangeCipherSpec:
		return nil
	case RecordAlert:
		if len(payload) < 2 {
			return fmt.Errorf("%w: short alert", ErrMalformed)
		}
		return &AlertError{Level: payload[0], Description: payload[1]}
	case RecordHandshake:
		if f.aead != nil {
			return fmt.Errorf("%w: plaintext handshake after ServerHello in TLS 1.3", ErrMalformed)
		}
		f.hs = append(f.hs, payload...)
		return f.messages()
	case RecordApplicationData:
		if f.aead == nil {
			return fmt.Errorf("%w: application data before keys", ErrMalformed)
		}
		inner, typ, err := f.decrypt(rec)
		if err != nil {
			return err
		}
		switch typ {
		case RecordHandshake:
			f.hs = append(f.hs, inner...)
			return f.messages()
		case RecordAlert:
			if len(inner) < 2 {
				return fmt.Errorf("%w: short alert", ErrMalformed)
			}
			return &AlertError{Level: inner[0], Description: inner[1]}
		}
		return fmt.Errorf("%w: inner content type %d in the server's flight", ErrMalformed, typ)
	}
	return fmt.Errorf("%w: record type %d", ErrMalformed, h.Type)
}

// Rest returns the bytes fed after the last record the tracker read (after
// a HelloRetryRequest: the records that followed it).
func (f *Flight) Rest() []byte { return f.buf }

// messages consumes whole handshake messages from f.hs.
func (f *Flight) messages() error {
	for len(f.hs) >= 4 && !f.Complete {
		n := int(f.hs[1])<<16 | int(f.hs[2])<<8 | int(f.hs[3])
		if n > 1<<20 {
			return fmt.Errorf("%w: handshake message of %d bytes", ErrMalformed, n)
		}
		if len(f.hs) < 4+n {
			return nil
		}
		msg := f.hs[:4+n]
		f.hs = f.hs[4+n:]
		f.Messages = append(f.Messages, Message{Type: msg[0], Length: n})
		if f.ServerHello == nil {
			if err := f.serverHello(msg); err != nil {
				return err
			}
			continue
		}
		switch {
		case f.aead != nil && msg[0] == TypeFinished:
			f.Complete = true
		case f.aead == nil && msg[0] == TypeServerHelloDone:
			f.Complete = true
		}
	}
	return nil
}

func (f *Flight) serverHello(msg []byte) error {
	sh, err := ParseServerHello(msg)
	if err != nil {
		return err
	}
	f.ServerHello = sh
	if sh.RetryRequest {
		if f.hello.Retry != nil {
			return fmt.Errorf("%w: a second HelloRetryRequest", ErrMalformed)
		}
		f.RetryRequest = msg
		return fmt.Errorf("%w (group %v)", ErrHelloRetry, sh.Group)
	}
	if sh.Version != 0x0304 {
		return nil // TLS 1.2 or older: the flight stays in plaintext
	}
	var keyLen int
	switch sh.CipherSuite {
	case 0x1301:
		f.newHash, keyLen = sha256.New, 16
	case 0x1302:
		f.newHash, keyLen = sha512.New384, 32
	default:
		return fmt.Errorf("%w: server chose cipher suite 0x%04x, not offered", ErrMalformed, sh.CipherSuite)
	}
	if len(f.hs) > 0 {
		return fmt.Errorf("%w: handshake data after ServerHello in the same record", ErrMalformed)
	}
	shared, err := f.hello.sharedSecret(sh.Group, sh.KeyShare)
	if err != nil {
		return err
	}
	f.trans = f.newHash()
	if r := f.hello.Retry; r != nil {
		// The transcript starts with a message_hash of the first hello,
		// then the HelloRetryRequest (RFC 8446 section 4.4.1).
		first := f.newHash()
		first.Write(r.First)
		sum := first.Sum(nil)
		f.trans.Write([]byte{254, 0, 0, byte(len(sum))})
		f.trans.Write(sum)
		f.trans.Write(r.Request)
	}
	f.trans.Write(f.hello.Message())
	f.trans.Write(msg)
	secret, err := f.serverHandshakeSecret(shared)
	if err != nil {
		return err
	}
	key, err := expandLabel(f.newHash, secret, "key", nil, keyLen)
	if err != nil {
		return err
	}
	f.iv, err = expandLabel(f.newHash, secret, "iv", nil, 12)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	f.aead, err = cipher.NewGCM(block)
	return err
}

// serverHandshakeSecret runs the TLS 1.3 key schedule (RFC 8446 section
// 7.1) up to server_handshake_traffic_secret.
func (f *Flight) serverHandshakeSecret(shared []byte) ([]byte, error) {
	hl := f.newHash().Size()
	early, err := hkdf.Extract(f.newHash, make([]byte, hl), nil)
	if err != nil {
		return nil, err
	}
	empty := f.newHash().Sum(nil)
	derived, err := expandLabel(f.newHash, early, "derived", empty, hl)
	if err != nil {
		return nil, err
	}
	hs, err := hkdf.Extract(f.newHash, shared, derived)
	if err != nil {
		return nil, err
	}
	return expandLabel(f.newHash, hs, "s hs traffic", f.trans.Sum(nil), hl)
}

func (f *Flight) decrypt(rec []byte) ([]byte, uint8, error) {
	nonce := make([]byte, 12)
	copy(nonce, f.iv)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], f.seq)
	for i := range s {
		nonce[4+i] ^= s[i]
	}
	f.seq++
	plain, err := f.aead.Open(nil, nonce, rec[RecordHeaderLen:], rec[:RecordHeaderLen])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: cannot decrypt the server's record %d: %v", ErrMalformed, f.seq, err)
	}
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, 0, fmt.Errorf("%w: record without content type", ErrMalformed)
	}
	return plain[:i], plain[i], nil
}

// expandLabel is HKDF-Expand-Label (RFC 8446 section 7.1).
func expandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full)+len(context))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	return hkdf.Expand(h, secret, string(info), length)
}
