package middlebox

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Code points the devices look for.
const (
	GroupX25519MLKEM768 = 0x11ec
	MLDSA44             = 0x0904
	MLDSA65             = 0x0905
	MLDSA87             = 0x0906

	extSignatureAlgorithms = 13
	extKeyShare            = 51
)

// maxHello bounds the ClientHello message the device reassembles (header
// included): a larger one is let through uninspected.
const maxHello = 1<<14 + 4

// Hello is what a device read of a ClientHello.
type Hello struct {
	// Length is the handshake length field: the message's size without
	// its 4-byte header.
	Length int `json:"length"`
	// KeyShares are the groups of the key_share extension's entries.
	KeyShares []uint16 `json:"key_shares"`
	// MLDSA are the ML-DSA code points (0x0904-0x0906) offered in
	// signature_algorithms.
	MLDSA []uint16 `json:"mldsa,omitempty"`
	// Records and Segments count the TLS records and TCP segments the
	// message came in.
	Records  int `json:"records"`
	Segments int `json:"segments"`
}

// PostQuantum reports whether the hello carries an X25519MLKEM768 key share.
func (h *Hello) PostQuantum() bool {
	for _, g := range h.KeyShares {
		if g == GroupX25519MLKEM768 {
			return true
		}
	}
	return false
}

// String summarises the hello for logs: "length 1788 in 1 record, 2
// segments, key shares [0x11ec 0x001d], ML-DSA [0x0904 0x0905 0x0906]".
func (h *Hello) String() string {
	s := fmt.Sprintf("length %d in %d record(s), %d segment(s), key shares %#04x", h.Length, h.Records, h.Segments, h.KeyShares)
	if len(h.MLDSA) > 0 {
		s += fmt.Sprintf(", ML-DSA %#04x", h.MLDSA)
	}
	return s
}

// helloRecord reports whether p, the first payload bytes of a flow, can
// begin a TLS handshake record holding a ClientHello: as many of its first
// six bytes as p has are those of one (content type 22, version 3.x, a
// length up to 2^14+2048, handshake type 1). A first segment cut inside the
// record header still counts: the split-intolerant device drops it.
func helloRecord(p []byte) bool {
	switch {
	case len(p) < 1 || p[0] != 0x16:
		return false
	case len(p) >= 2 && p[1] != 3:
		return false
	case len(p) >= 3 && p[2] > 4:
		return false
	case len(p) >= 6 && p[5] != 1:
		return false
	}
	if len(p) >= 5 {
		n := int(binary.BigEndian.Uint16(p[3:5]))
		return n > 0 && n <= 1<<14+2048
	}
	return true
}

var errNotHello = errors.New("middlebox: not a ClientHello")

// reassemble returns the ClientHello handshake message carried by the
// handshake records at the start of stream and how many records held it.
// done is false while stream ends before the message does; err is set when
// the records cannot hold a ClientHello (another content type first, a
// message larger than maxHello).
func reassemble(stream []byte) (msg []byte, records int, done bool, err error) {
	want := -1
	for len(stream) >= 5 {
		if stream[0] != 0x16 || stream[1] != 3 {
			return nil, records, false, errNotHello
		}
		n := int(binary.BigEndian.Uint16(stream[3:5]))
		if n == 0 {
			return nil, records, false, errNotHello
		}
		if len(stream) < 5+n {
			break
		}
		msg = append(msg, stream[5:5+n]...)
		stream = stream[5+n:]
		records++
		if want < 0 && len(msg) >= 4 {
			if msg[0] != 1 {
				return nil, records, false, errNotHello
			}
			want = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if want > maxHello {
				return nil, records, false, fmt.Errorf("%w: %d-byte message", errNotHello, want)
			}
		}
		if want >= 0 && len(msg) >= want {
			return msg[:want], records, true, nil
		}
	}
	return nil, records, false, nil
}

// parseHello reads the fields the devices care about from a ClientHello
// handshake message (header included).
func parseHello(msg []byte) (Hello, error) {
	r := reader(msg)
	var h Hello
	typ, ok := r.u8()
	n, ok2 := r.u24()
	if !ok || !ok2 || typ != 1 || n != len(r) {
		return h, errNotHello
	}
	h.Length = n
	if _, ok := r.take(2 + 32); !ok {
		return h, errNotHello
	}
	if _, ok := r.vec8(); !ok {
		return h, errNotHello
	}
	if _, ok := r.vec16(); !ok {
		return h, errNotHello
	}
	if _, ok := r.vec8(); !ok {
		return h, errNotHello
	}
	if len(r) == 0 {
		return h, nil
	}
	exts, ok := r.vec16()
	if !ok || len(r) != 0 {
		return h, errNotHello
	}
	for len(exts) > 0 {
		typ, ok := exts.u16()
		body, ok2 := exts.vec16()
		if !ok || !ok2 {
			return h, errNotHello
		}
		switch typ {
		case extKeyShare:
			list, ok := body.vec16()
			if !ok {
				return h, errNotHello
			}
			for len(list) > 0 {
				g, ok := list.u16()
				_, ok2 := list.vec16()
				if !ok || !ok2 {
					return h, errNotHello
				}
				h.KeyShares = append(h.KeyShares, g)
			}
		case extSignatureAlgorithms:
			list, ok := body.vec16()
			if !ok || len(list)%2 != 0 {
				return h, errNotHello
			}
			for len(list) > 0 {
				a, _ := list.u16()
				if a >= MLDSA44 && a <= MLDSA87 {
					h.MLDSA = append(h.MLDSA, a)
				}
			}
		}
	}
	return h, nil
}

// reader consumes big-endian TLS fields, checking every length.
type reader []byte

func (r *reader) take(n int) ([]byte, bool) {
	if n < 0 || n > len(*r) {
		return nil, false
	}
	b := (*r)[:n]
	*r = (*r)[n:]
	return b, true
}

func (r *reader) u8() (int, bool) {
	b, ok := r.take(1)
	if !ok {
		return 0, false
	}
	return int(b[0]), true
}

func (r *reader) u16() (uint16, bool) {
	b, ok := r.take(2)
	if !ok {
		return 0, false
	}
	return binary.BigEndian.Uint16(b), true
}

func (r *reader) u24() (int, bool) {
	b, ok := r.take(3)
	if !ok {
		return 0, false
	}
	return int(b[0])<<16 | int(b[1])<<8 | int(b[2]), true
}

func (r *reader) vec8() (reader, bool) {
	n, ok := r.u8()
	if !ok {
		return nil, false
	}
	b, ok := r.take(n)
	return reader(b), ok
}

func (r *reader) vec16() (reader, bool) {
	n, ok := r.u16()
	if !ok {
		return nil, false
	}
	b, ok := r.take(int(n))
	return reader(b), ok
}
