package server

import (
	"net/netip"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
)

// The per-session join, in two pure steps: which of the connections the
// server saw are a session's (selectConns), and what they and the page's
// rung results say, family by family (joinFamilies). The effects stay with
// the callers: joinInput reads the registry and TCP_INFO, joinSession
// adds the report's ID, time and the client's ASN, refineSession reads
// the brackets to lend ports for.

// joinSpec is what the join needs of a session.
type joinSpec struct {
	ID     string
	Addr   netip.Addr // the address the page was opened from
	Family int        // Addr's
	SYNMSS int        // the MSS in the SYN of the page's own connection, 0 unknown
	Plain  bool       // the page measured over plain HTTP (session.Plain)
	// From and To bound the session's turn (the lease of its address).
	From, To time.Time
}

// addrConns are the connections the server saw from one address of the
// client (the session's own, or one its requests came from), at least
// those accepted in the session's turn.
type addrConns struct {
	Addr netip.Addr
	// Claimed is when the session claimed Addr's turn too (the second
	// family of a dual-stack check); zero: never.
	Claimed time.Time
	Conns   []snapshot
}

type rungKey struct{ fam, mss int }

// sessionConns are a session's connections by what they tested.
type sessionConns struct {
	tls   map[rungKey][]snapshot // a rung's TLS (or plain HTTP) connections
	down  map[rungKey][]snapshot // a rung's server-first probes
	exact map[int][]snapshot     // by family: the refinement's exact-size probes
	all   map[int][]snapshot     // by family: every rung connection (tls and down)
}

// selectConns picks the session's connections from what the server saw.
// From the session's own address (or its /64): the rung connections
// accepted in its turn, when no other check of that address was testing,
// that no other session named. From any other address (the second family
// of a dual-stack check): only those the session named, or accepted in
// its turn after it claimed that address's turn too.
func selectConns(sp joinSpec, seen []addrConns) sessionConns {
	c := sessionConns{tls: map[rungKey][]snapshot{}, down: map[rungKey][]snapshot{},
		exact: map[int][]snapshot{}, all: map[int][]snapshot{}}
	for _, a := range seen {
		fam := familyOf(a.Addr)
		own := addrKey(a.Addr) == addrKey(sp.Addr)
		for _, sn := range a.Conns {
			switch {
			case sn.Kind == kindPage, sn.Accepted.Before(sp.From), sn.Accepted.After(sp.To):
				continue
			case sn.Session != "" && sn.Session != sp.ID:
				continue // another session's connection from the same address
			case !own && sn.Session != sp.ID && (a.Claimed.IsZero() || sn.Accepted.Before(a.Claimed)):
				continue // unnamed, from another address before the session claimed it
			}
			k := rungKey{fam, sn.MSS}
			switch sn.Kind {
			case kindExact:
				c.exact[fam] = append(c.exact[fam], sn)
				continue
			case kindDown:
				c.down[k] = append(c.down[k], sn)
			default:
				c.tls[k] = append(c.tls[k], sn)
			}
			c.all[fam] = append(c.all[fam], sn)
		}
	}
	return c
}

// familyJoin is one family of a session joined: each rung as the page and
// the server saw it, and the evidence they make.
type familyJoin struct {
	Family   int
	Rungs    []RungResult // by MSS
	Evidence diagnose.Evidence
}

// joinFamilies joins the page's rung results with the session's
// connections, one family at a time in the order the page reported them
// (the session's own family when it reported nothing).
func joinFamilies(sp joinSpec, res api.PageResult, c sessionConns) []familyJoin {
	rungsBy := map[int][]RungResult{}
	var fams []int
	for _, br := range res.Rungs {
		if _, ok := rungsBy[br.Family]; !ok {
			fams = append(fams, br.Family)
		}
		k := rungKey{br.Family, br.MSS}
		rungsBy[br.Family] = append(rungsBy[br.Family], joinRung(br.Family, br, sp.ID, sp.Plain, c.tls[k], c.down[k]))
	}
	for _, fam := range fams {
		rungsBy[fam] = append(rungsBy[fam], exactTests(fam, c.exact[fam])...)
	}
	if len(fams) == 0 {
		fams = []int{sp.Family}
	}
	var out []familyJoin
	for _, fam := range fams {
		ev := familyEvidence(fam, rungsBy[fam], c.all[fam]) // sorts the rungs
		ev.TooSlow = tooSlow(fam, rungsBy[fam])
		if sp.Plain {
			ev.Skipped = append(ev.Skipped, "the TLS handshakes: the page was opened over http:// and this server has the "+
				"self-signed certificate mtuscope serve makes, which browsers do not trust, so the page measured the packet "+
				"sizes with plain HTTP downloads, uploads and server-first segments; the ClientHello's own size was not tested "+
				"(give serve a trusted certificate with --cert/--key or --acme-host)")
		}
		if ev.LocalMTU == 0 && fam == sp.Family && sp.SYNMSS > 0 {
			ev.LocalMTU, ev.OfferedMSS = sp.SYNMSS+diagnose.IPHeader(fam), sp.SYNMSS
		}
		out = append(out, familyJoin{Family: fam, Rungs: rungsBy[fam], Evidence: ev})
	}
	return out
}

// result is the family's part of a report: its join and the diagnosis.
func (f familyJoin) result() FamilyResult {
	d := diagnose.Diagnose(f.Evidence)
	readHelloContent(f.Family, f.Rungs).apply(&d)
	return FamilyResult{Family: f.Family, Evidence: f.Evidence, Diagnosis: d, Rungs: f.Rungs}
}
