package tlswire

import "encoding/json"

// Presence says whether a ClientHello carried something: Present and
// Absent are read from the hello; Unknown when the part that would say
// never arrived.
type Presence uint8

const (
	Unknown Presence = iota
	Absent
	Present
)

func (p Presence) String() string {
	switch p {
	case Absent:
		return "no"
	case Present:
		return "yes"
	}
	return "unknown"
}

// MarshalJSON writes "yes", "no" or "unknown".
func (p Presence) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// UnmarshalJSON reads what MarshalJSON writes; anything else is Unknown.
func (p *Presence) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	switch s {
	case "yes":
		*p = Present
	case "no":
		*p = Absent
	default:
		*p = Unknown
	}
	return nil
}

// Merge combines what two readings of hellos from the same client say:
// one that saw a feature outweighs one that could not tell.
func (p Presence) Merge(q Presence) Presence { return max(p, q) }

// HelloFeatures is what a ClientHello, or the first part of one, shows of
// the features devices on a path are known to reject: the post-quantum
// key share, the ML-DSA signature algorithms, the server name, the size.
type HelloFeatures struct {
	// Size is the handshake message size its header announces (4-byte
	// header included), 0 when the header did not arrive; Read is how many
	// of its bytes were read.
	Size int `json:"size"`
	Read int `json:"read"`
	// PQKeyShare: a key share for X25519MLKEM768 (0x11EC); PQOffered: the
	// group listed in supported_groups.
	PQKeyShare Presence `json:"pq_key_share"`
	PQOffered  Presence `json:"pq_offered"`
	// MLDSA: signature_algorithms offers 0x0904, 0x0905 or 0x0906.
	MLDSA Presence `json:"mldsa_sigalgs"`
	// SNI: a server name; ServerName is it, when read.
	SNI        Presence `json:"sni"`
	ServerName string   `json:"server_name,omitempty"`
}

// ReadHelloFeatures reads what msg, the first bytes of a ClientHello
// handshake message (header included), shows: a feature is Present once
// its bytes are read, Absent only when the extension that would carry it
// arrived whole without it (or the whole message arrived without the
// extension), Unknown otherwise. It never fails: input that is not a
// ClientHello, or malformed, leaves everything from there on Unknown.
func ReadHelloFeatures(msg []byte) HelloFeatures {
	var f HelloFeatures
	r := reader{msg}
	var typ uint8
	var n int
	if !r.u8(&typ) || typ != TypeClientHello || !r.u24(&n) {
		return f
	}
	f.Size = 4 + n
	body := r.b[:min(len(r.b), n)]
	f.Read = 4 + len(body)
	whole := len(body) == n
	b := reader{body}
	var version uint16
	var random, sid, suites, comp []byte
	if !b.u16(&version) || !b.bytes(32, &random) || !b.vec8(&sid) || !b.vec16(&suites) || !b.vec8(&comp) {
		return f
	}
	var extLen uint16
	if !b.u16(&extLen) {
		if whole && b.empty() {
			f.PQKeyShare, f.PQOffered, f.MLDSA, f.SNI = Absent, Absent, Absent, Absent
		}
		return f
	}
	exts := b.b[:min(len(b.b), int(extLen))]
	allExts := whole && len(exts) == int(extLen)
	e := reader{exts}
	seenKS, seenGroups, seenSig, seenSNI := false, false, false, false
	for len(e.b) >= 4 {
		var et, el uint16
		e.u16(&et)
		e.u16(&el)
		data := e.b[:min(len(e.b), int(el))]
		complete := len(data) == int(el)
		e.b = e.b[len(data):]
		switch et {
		case ExtKeyShare:
			seenKS = true
			f.PQKeyShare = f.PQKeyShare.Merge(keyShareHas(data, complete, GroupX25519MLKEM768))
		case ExtSupportedGroups:
			seenGroups = true
			f.PQOffered = f.PQOffered.Merge(listHas(data, complete, uint16(GroupX25519MLKEM768), uint16(GroupX25519MLKEM768)))
		case ExtSignatureAlgorithms:
			seenSig = true
			f.MLDSA = f.MLDSA.Merge(listHas(data, complete, MLDSASigAlgs[0], MLDSASigAlgs[len(MLDSASigAlgs)-1]))
		case ExtServerName:
			seenSNI = true
			f.SNI, f.ServerName = serverName(data)
		}
	}
	if allExts {
		for _, x := range []struct {
			seen bool
			p    *Presence
		}{{seenKS, &f.PQKeyShare}, {seenGroups, &f.PQOffered}, {seenSig, &f.MLDSA}, {seenSNI, &f.SNI}} {
			if !x.seen {
				*x.p = Absent
			}
		}
	}
	return f
}

// keyShareHas reads a key_share extension's body (its first part when
// not complete): the group of every entry whose header arrived.
func keyShareHas(data []byte, complete bool, g Group) Presence {
	d := reader{data}
	var n uint16
	if !d.u16(&n) {
		return Unknown
	}
	l := reader{d.b[:min(len(d.b), int(n))]}
	for len(l.b) >= 4 {
		var grp, kl uint16
		l.u16(&grp)
		l.u16(&kl)
		if Group(grp) == g {
			return Present
		}
		if int(kl) > len(l.b) {
			return Unknown // the rest of the list never arrived
		}
		l.b = l.b[kl:]
	}
	if complete && int(n) == len(d.b) && l.empty() {
		return Absent
	}
	return Unknown
}

// listHas reads a 2-byte-length list of 16-bit code points (its first
// part when not complete) for one in [lo, hi].
func listHas(data []byte, complete bool, lo, hi uint16) Presence {
	d := reader{data}
	var n uint16
	if !d.u16(&n) {
		return Unknown
	}
	l := reader{d.b[:min(len(d.b), int(n))]}
	var c uint16
	for l.u16(&c) {
		if c >= lo && c <= hi {
			return Present
		}
	}
	if complete && int(n) == len(d.b) && l.empty() {
		return Absent
	}
	return Unknown
}

// serverName reads a server_name extension's body: Present with the
// name when a host name entry arrived whole.
func serverName(data []byte) (Presence, string) {
	d := reader{data}
	var list []byte
	if !d.vec16(&list) {
		return Present, "" // the extension is there; its name never arrived
	}
	l := reader{list}
	for !l.empty() {
		var nt uint8
		var name []byte
		if !l.u8(&nt) || !l.vec16(&name) {
			break
		}
		if nt == 0 {
			return Present, string(name)
		}
	}
	return Present, ""
}
