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
	// PQKeyShare: a key share for a post-quantum group (Group.PostQuantum:
	// X25519MLKEM768, 0x11EC, in every browser that sends one), PQGroup
	// the first such group; PQOffered: such a group listed in
	// supported_groups.
	PQKeyShare Presence `json:"pq_key_share"`
	PQGroup    Group    `json:"pq_group,omitempty"`
	PQOffered  Presence `json:"pq_offered"`
	// MLDSA: signature_algorithms offers 0x0904, 0x0905 or 0x0906.
	MLDSA Presence `json:"mldsa_sigalgs"`
	// SNI: a server name; ServerName is it, when read.
	SNI        Presence `json:"sni"`
	ServerName string   `json:"server_name,omitempty"`
}

// ReadHelloFeatures reads what msg, the first bytes of a ClientHello
// handshake message (header included), shows, as ScanClientHelloPrefix
// reads it: a feature is Present once its bytes are read, Absent only
// when the extension that would carry it arrived whole without it (or
// the whole message arrived without the extension), Unknown otherwise. It
// never fails: input that is not a ClientHello, or malformed, says only
// what was read before the fault.
func ReadHelloFeatures(msg []byte) HelloFeatures {
	var s HelloSummary
	err := scanHello(msg, &s, true)
	f := HelloFeatures{Size: s.Size, Read: min(len(msg), s.Size), ServerName: string(s.ServerName)}
	// A scan that failed knows no absence; one that read every extension
	// (Read set whole) knows the server name's too.
	known := s.Read
	if err != nil {
		known = 0
	}
	all := known == readAll && !s.Partial
	shares := s.NKeyShares <= len(s.KeyShareGroups) // all of them recorded
	f.PQKeyShare = presence(s.PQShare(), known&ReadKeyShare != 0 && shares)
	f.PQOffered = presence(s.PQGroup, known&ReadGroups != 0)
	f.MLDSA = presence(s.MLDSA, known&ReadSigAlgs != 0)
	f.SNI = presence(s.HasServerName, all)
	for _, g := range s.Shares() {
		if g.PostQuantum() {
			f.PQGroup = g
			break
		}
	}
	return f
}

// presence is Present when seen, Absent when not seen where it would
// have been, Unknown otherwise.
func presence(seen, known bool) Presence {
	switch {
	case seen:
		return Present
	case known:
		return Absent
	}
	return Unknown
}
