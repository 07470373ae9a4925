// Package asn maps IP addresses to the autonomous system (ASN and
// organisation) that announces them, from public datasets imported into a
// compact local database, and falls back to /24 and /48 groups without one.
package asn

import (
	"fmt"
	"net/netip"
)

// FetchCommand is the command that fetches ASN data; every consumer that
// shows the fallback grouping names it.
const FetchCommand = "mtuscope asn update"

// Fallback group sizes used when an address has no ASN.
const (
	FallbackBitsV4 = 24
	FallbackBitsV6 = 48
)

// Result is the answer to one lookup.
type Result struct {
	// Addr is the address looked up, IPv4-mapped IPv6 unmapped and the
	// zone removed.
	Addr netip.Addr `json:"ip"`
	// Found reports whether the database holds a range with an ASN for Addr.
	Found bool `json:"found"`
	// ASN is the autonomous system number, 0 when not found.
	ASN uint32 `json:"asn,omitempty"`
	// Org is the organisation that holds the ASN, as the dataset names it.
	Org string `json:"org,omitempty"`
	// Prefix is the largest CIDR block holding Addr inside the matching
	// range; when not found it is Addr's /24 (IPv4) or /48 (IPv6) group.
	Prefix netip.Prefix `json:"prefix"`
	// First and Last bound the matching range of the database (inclusive);
	// both are invalid when not found.
	First netip.Addr `json:"range_first,omitzero"`
	Last  netip.Addr `json:"range_last,omitzero"`
}

// Group is the key clients are grouped by: "AS15169" when the ASN is
// known, otherwise the /24 or /48 prefix, such as "192.0.2.0/24".
func (r Result) Group() string {
	if r.Found {
		return fmt.Sprintf("AS%d", r.ASN)
	}
	return r.Prefix.String()
}

// Normalize returns addr without its zone and, for an IPv4-mapped IPv6
// address, as the IPv4 address it carries.
func Normalize(addr netip.Addr) netip.Addr {
	return addr.WithZone("").Unmap()
}

// FallbackPrefix returns the group of addr used when no ASN is known: its
// /24 for IPv4, its /48 for IPv6. It returns the zero Prefix for the zero Addr.
func FallbackPrefix(addr netip.Addr) netip.Prefix {
	addr = Normalize(addr)
	if !addr.IsValid() {
		return netip.Prefix{}
	}
	bits := FallbackBitsV6
	if addr.Is4() {
		bits = FallbackBitsV4
	}
	p, _ := addr.Prefix(bits)
	return p
}

// fallback is the Result for an address without an ASN.
func fallback(addr netip.Addr) Result {
	return Result{Addr: addr, Prefix: FallbackPrefix(addr)}
}

// Lookuper is what consumers need: one answer per address, safe for
// concurrent use. *Table and *Resolver implement it.
type Lookuper interface {
	Lookup(addr netip.Addr) Result
}
