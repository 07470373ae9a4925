package tlswire

import "fmt"

// HelloSummary is what a passive observer needs of a ClientHello, read by
// ScanClientHello without allocating: ServerName aliases the message.
type HelloSummary struct {
	// Size is the handshake message size in bytes (4-byte header included).
	Size       int
	ServerName []byte
	// KeyShareGroups holds the first len(KeyShareGroups) groups offered a
	// key share; NKeyShares counts them all.
	KeyShareGroups [8]Group
	NKeyShares     int
}

// Shares returns the key-share groups recorded.
func (s *HelloSummary) Shares() []Group {
	return s.KeyShareGroups[:min(s.NKeyShares, len(s.KeyShareGroups))]
}

// ScanClientHello reads the server name and key-share groups of a
// ClientHello handshake message (header included) into s, as
// ParseClientHello would, without allocating: the monitor's hot path
// reads one per connection.
func ScanClientHello(msg []byte, s *HelloSummary) error {
	*s = HelloSummary{}
	r := reader{msg}
	var typ uint8
	var n int
	if !r.u8(&typ) || !r.u24(&n) {
		return ErrShort
	}
	if typ != TypeClientHello {
		return fmt.Errorf("%w: type %d is not a ClientHello", ErrMalformed, typ)
	}
	var body []byte
	if !r.bytes(n, &body) {
		return ErrShort
	}
	s.Size = 4 + n
	b := reader{body}
	var version uint16
	var random, sid, suites, comp []byte
	if !b.u16(&version) || !b.bytes(32, &random) || !b.vec8(&sid) || !b.vec16(&suites) || !b.vec8(&comp) {
		return fmt.Errorf("%w: fixed fields", ErrMalformed)
	}
	if len(suites)%2 != 0 {
		return fmt.Errorf("%w: odd cipher suite list", ErrMalformed)
	}
	if b.empty() {
		return nil
	}
	var exts []byte
	if !b.vec16(&exts) || !b.empty() {
		return fmt.Errorf("%w: extensions block", ErrMalformed)
	}
	e := reader{exts}
	for !e.empty() {
		var et uint16
		var ed []byte
		if !e.u16(&et) || !e.vec16(&ed) {
			return fmt.Errorf("%w: extension header", ErrMalformed)
		}
		d := reader{ed}
		switch et {
		case ExtServerName:
			var list []byte
			if !d.vec16(&list) {
				return fmt.Errorf("%w: server_name extension", ErrMalformed)
			}
			l := reader{list}
			for !l.empty() {
				var nt uint8
				var name []byte
				if !l.u8(&nt) || !l.vec16(&name) {
					return fmt.Errorf("%w: server_name extension", ErrMalformed)
				}
				if nt == 0 && s.ServerName == nil {
					s.ServerName = name
				}
			}
		case ExtKeyShare:
			var list []byte
			if !d.vec16(&list) {
				return fmt.Errorf("%w: key_share extension", ErrMalformed)
			}
			l := reader{list}
			for !l.empty() {
				var g uint16
				var key []byte
				if !l.u16(&g) || !l.vec16(&key) {
					return fmt.Errorf("%w: key_share extension", ErrMalformed)
				}
				if s.NKeyShares < len(s.KeyShareGroups) {
					s.KeyShareGroups[s.NKeyShares] = Group(g)
				}
				s.NKeyShares++
			}
		}
	}
	return nil
}
