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
	// PQGroup says supported_groups lists a post-quantum group
	// (Group.PostQuantum); MLDSA that signature_algorithms offers an ML-DSA
	// algorithm (IsMLDSA).
	PQGroup bool
	MLDSA   bool
	// HasServerName says a server_name extension was seen (ServerName is
	// nil when its name was not held).
	HasServerName bool
	// Partial says the bytes scanned ended before the message did
	// (ScanClientHelloPrefix): only what they held was read.
	Partial bool
	// Read says which extensions' absence is known as well as their
	// presence: ReadKeyShare, ReadGroups and ReadSigAlgs are set when
	// that extension was read whole or when every extension was seen (the
	// hello has none). A partial scan sets only those it read to their end.
	Read uint8
}

// Bits of HelloSummary.Read.
const (
	ReadKeyShare uint8 = 1 << iota
	ReadGroups
	ReadSigAlgs
	readAll = ReadKeyShare | ReadGroups | ReadSigAlgs
)

// Shares returns the key-share groups recorded.
func (s *HelloSummary) Shares() []Group {
	return s.KeyShareGroups[:min(s.NKeyShares, len(s.KeyShareGroups))]
}

// PQShare reports whether a recorded key share is of a post-quantum group.
func (s *HelloSummary) PQShare() bool {
	for _, g := range s.Shares() {
		if g.PostQuantum() {
			return true
		}
	}
	return false
}

// PostQuantum reports whether g is a post-quantum (ML-KEM) group: the
// hybrids SecP256r1MLKEM768 (0x11eb), X25519MLKEM768 (0x11ec) and
// SecP384r1MLKEM1024 (0x11ed), the pure ML-KEM groups (0x0200-0x0202), and
// the draft X25519Kyber768 (0x6399).
func (g Group) PostQuantum() bool {
	switch {
	case g >= 0x11eb && g <= 0x11ed, g >= 0x0200 && g <= 0x0202, g == 0x6399:
		return true
	}
	return false
}

// IsMLDSA reports whether a signature algorithm is one of MLDSASigAlgs.
func IsMLDSA(alg uint16) bool { return alg >= 0x0904 && alg <= 0x0906 }

// ScanClientHello reads the server name, key-share groups, and whether
// supported_groups and signature_algorithms hold post-quantum entries, of
// a ClientHello handshake message (header included) into s, as
// ParseClientHello would, without allocating: the monitor's hot path
// reads one per connection.
func ScanClientHello(msg []byte, s *HelloSummary) error { return scanHello(msg, s, false) }

// ScanClientHelloPrefix reads what it can of a ClientHello of which only
// the first bytes are held (b, header included; the rest was lost or cut
// off, as when a device dropped the hello's second segment): every
// extension wholly in b, and of the one b cuts, its presence and the
// entries held of a key_share (those whose group field is in b),
// supported_groups or signature_algorithms list. s.Partial is set when b
// ends before the message does; s.Read says which extensions' absence is
// known. It fails when the bytes held are not a ClientHello's beginning
// (ErrShort when too few to tell).
func ScanClientHelloPrefix(b []byte, s *HelloSummary) error { return scanHello(b, s, true) }

func scanHello(msg []byte, s *HelloSummary, prefix bool) error {
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
		if !prefix {
			return ErrShort
		}
		body, s.Partial = r.b, true
	}
	s.Size = 4 + n
	b := reader{body}
	var version uint16
	var random, sid, suites, comp []byte
	if !b.u16(&version) || !b.bytes(32, &random) || !b.vec8(&sid) || !b.vec16(&suites) || !b.vec8(&comp) {
		if s.Partial {
			return ErrShort
		}
		return fmt.Errorf("%w: fixed fields", ErrMalformed)
	}
	if len(suites)%2 != 0 {
		return fmt.Errorf("%w: odd cipher suite list", ErrMalformed)
	}
	if b.empty() {
		if !s.Partial {
			s.Read = readAll // no extensions at all
		}
		return nil
	}
	var exts []byte
	if s.Partial {
		var l uint16
		if !b.u16(&l) {
			return nil
		}
		if len(b.b) > int(l) {
			return fmt.Errorf("%w: extensions block", ErrMalformed)
		}
		exts = b.b
	} else if !b.vec16(&exts) || !b.empty() {
		return fmt.Errorf("%w: extensions block", ErrMalformed)
	}
	e := reader{exts}
	for !e.empty() {
		var et, el uint16
		if !e.u16(&et) || !e.u16(&el) {
			if !s.Partial {
				return fmt.Errorf("%w: extension header", ErrMalformed)
			}
			break // a partial scan's bytes end in the header
		}
		if int(el) > len(e.b) {
			if !s.Partial {
				return fmt.Errorf("%w: extension header", ErrMalformed)
			}
			s.extensionHead(et, e.b)
			break
		}
		if err := s.extension(et, e.b[:el]); err != nil {
			return err
		}
		e.b = e.b[el:]
	}
	if !s.Partial {
		s.Read = readAll
	}
	return nil
}

// extension reads one whole extension into s.
func (s *HelloSummary) extension(et uint16, ed []byte) error {
	d := reader{ed}
	switch et {
	case ExtServerName:
		s.HasServerName = true
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
		if err := s.keyShares(list, false); err != nil {
			return err
		}
		s.Read |= ReadKeyShare
	case ExtSupportedGroups:
		var list []byte
		if !d.vec16(&list) || len(list)%2 != 0 {
			return fmt.Errorf("%w: supported_groups extension", ErrMalformed)
		}
		s.groups(list)
		s.Read |= ReadGroups
	case ExtSignatureAlgorithms:
		var list []byte
		if !d.vec16(&list) || len(list)%2 != 0 {
			return fmt.Errorf("%w: signature_algorithms extension", ErrMalformed)
		}
		s.sigAlgs(list)
		s.Read |= ReadSigAlgs
	}
	return nil
}

// extensionHead reads the first bytes held of an extension a partial
// scan's bytes cut off: the entries held of the lists s records, and that
// a server name was offered.
func (s *HelloSummary) extensionHead(et uint16, held []byte) {
	if et == ExtServerName {
		s.HasServerName = true
		return
	}
	if len(held) < 2 {
		return
	}
	n := int(held[0])<<8 | int(held[1]) // the list's length
	list := held[2:min(len(held), 2+n)]
	switch et {
	case ExtKeyShare:
		_ = s.keyShares(list, true) // a cut list is no error
	case ExtSupportedGroups:
		s.groups(list)
	case ExtSignatureAlgorithms:
		s.sigAlgs(list)
	}
}

// groups notes whether a supported_groups list (or its first entries)
// offers a post-quantum group.
func (s *HelloSummary) groups(list []byte) {
	for i := 0; i+1 < len(list); i += 2 {
		if Group(uint16(list[i])<<8 | uint16(list[i+1])).PostQuantum() {
			s.PQGroup = true
		}
	}
}

// sigAlgs notes whether a signature_algorithms list (or its first
// entries) offers an ML-DSA algorithm.
func (s *HelloSummary) sigAlgs(list []byte) {
	for i := 0; i+1 < len(list); i += 2 {
		if IsMLDSA(uint16(list[i])<<8 | uint16(list[i+1])) {
			s.MLDSA = true
		}
	}
}

// keyShares records the groups of a key_share list; cut says the list's
// bytes end early (a partial scan), so that an entry whose group is held
// counts although its key is not.
func (s *HelloSummary) keyShares(list []byte, cut bool) error {
	l := reader{list}
	for !l.empty() {
		var g uint16
		var key []byte
		if !l.u16(&g) {
			if cut {
				return nil
			}
			return fmt.Errorf("%w: key_share extension", ErrMalformed)
		}
		if s.NKeyShares < len(s.KeyShareGroups) {
			s.KeyShareGroups[s.NKeyShares] = Group(g)
		}
		s.NKeyShares++
		if !l.vec16(&key) {
			if cut {
				return nil
			}
			return fmt.Errorf("%w: key_share extension", ErrMalformed)
		}
	}
	return nil
}
