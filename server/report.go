package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	htmltemplate "html/template"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/web"
)

// Report is one stored diagnosis: who asked, and per family what was
// measured and what the diagnose package concluded from it.
type Report struct {
	ID      string     `json:"id"`
	Created time.Time  `json:"created"`
	Source  string     `json:"source"` // "page" or "probe"
	Version string     `json:"server_version"`
	Client  ClientInfo `json:"client"`
	Target  string     `json:"target,omitempty"` // what probe tested
	// Server is what the page tested: the name it was opened at and the
	// server's address.
	Server  *ServerInfo    `json:"server,omitempty"`
	RTTms   int            `json:"rtt_ms,omitempty"`
	Results []FamilyResult `json:"results"`
}

// ServerInfo names the server a page check measured.
type ServerInfo struct {
	Name    string `json:"name,omitempty"` // the host name (or address) the page was opened at
	Address string `json:"address,omitempty"`
	Family  int    `json:"family,omitempty"`
}

// ClientInfo is what the server knows of the client's network.
type ClientInfo struct {
	IP     string `json:"ip"`
	Family int    `json:"family"`
	ASN    uint32 `json:"asn,omitempty"`
	Org    string `json:"org,omitempty"`
	Group  string `json:"group"`
	// ASNAttribution credits the data the ASN and Org come from.
	ASNAttribution string `json:"asn_attribution,omitempty"`
	SYNMSS         int    `json:"syn_mss,omitempty"`
	UserAgent      string `json:"user_agent,omitempty"`
}

// FamilyResult is the evidence and diagnosis for one address family.
type FamilyResult struct {
	Family    int                `json:"family"`
	Evidence  diagnose.Evidence  `json:"evidence"`
	Diagnosis diagnose.Diagnosis `json:"diagnosis"`
	Rungs     []RungResult       `json:"rungs,omitempty"`
}

// Primary returns the result the report leads with: the first with a
// problem, else the first.
func (r *Report) Primary() *FamilyResult {
	for i := range r.Results {
		if r.Results[i].Diagnosis.Verdict.Problem() {
			return &r.Results[i]
		}
	}
	if len(r.Results) > 0 {
		return &r.Results[0]
	}
	return nil
}

// idEncoding spells report IDs: 16 random bytes, 26 lowercase base32 letters.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

const idLen = 26

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// validID reports whether s could be a report or session ID, before any
// lookup: exactly 26 characters of the ID alphabet.
func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// templates are the parsed report and operator templates.
type templates struct {
	report   *htmltemplate.Template
	text     *texttemplate.Template
	operator *htmltemplate.Template
}

func loadTemplates() (*templates, error) {
	fs := web.Templates()
	r, err := htmltemplate.New("report.html").Funcs(htmltemplate.FuncMap{"words": strings.Fields}).ParseFS(fs, "report.html", "strip.html")
	if err != nil {
		return nil, err
	}
	t, err := texttemplate.ParseFS(fs, "report.txt")
	if err != nil {
		return nil, err
	}
	o, err := htmltemplate.ParseFS(fs, "operator.html")
	if err != nil {
		return nil, err
	}
	return &templates{report: r, text: t, operator: o}, nil
}

// reportView is what the report templates render.
type reportView struct {
	R             *Report
	Primary       *FamilyResult
	Title         string
	Summary       string
	DirectionText string
	// Bracket says, where the path MTU is not exact (sizes between the
	// largest that passed and the smallest lost were not tested), the
	// bracket in words.
	Bracket string
	Ladders []ladder
	// NetworkFixes are for the customer's network team, OperatorFixes for
	// the operator of the service, ClientFixes for the person who ran the
	// check (their browser or other clients), separately.
	NetworkFixes, OperatorFixes, ClientFixes []fixView
	// Probe are the commands that fetch probe from this server and run it
	// (binaries.go), one per system; none when the server hands out none.
	Probe []probeCommand
	Link  string // the report's full URL
	Text  string
}

type fixView struct {
	diagnose.Fix
	Note string // what to adapt before running the commands
}

type ladder struct {
	Family int
	Rows   []ladderRow
	Strips []strip
	// Uncertain says which sizes rest on the browser's word alone, and why.
	Uncertain string
}

type ladderRow struct {
	Size               int
	Up, Down           string
	UpSym, DownSym     string
	UpClass, DownClass string
	Boundary           bool
}

// strip is one direction's picture: a cell per size, smallest first.
type strip struct {
	Label    string // "to the server"
	Sentence string // the picture in words
	Cells    []cell
	Width    int
	First    int
	Last     int
	// BoundaryX is where the boundary line goes (0: none), BoundarySize
	// its label.
	BoundaryX, BoundarySize int
}

type cell struct {
	X, W  int
	Size  int
	Class string
	Sym   string
}

var verdictTitles = map[diagnose.Verdict]string{
	diagnose.VerdictOK:               "the path is clean",
	diagnose.VerdictPMTUReduced:      "smaller path MTU, handled correctly",
	diagnose.VerdictBlackhole:        "large packets vanish (path MTU black hole)",
	diagnose.VerdictFragmentsDropped: "IP fragments are dropped",
	diagnose.VerdictSplitIntolerant:  "large TLS ClientHellos are dropped",
	diagnose.VerdictPQRejected:       "a device on the path rejects post-quantum TLS ClientHellos",
	diagnose.VerdictMLDSARejected:    "a device on the path rejects TLS ClientHellos offering ML-DSA",
	diagnose.VerdictLengthRejected:   "a device on the path drops TLS ClientHellos of 256-511 bytes",
	diagnose.VerdictSNIRejected:      "a device on the path refuses connections naming this server",
	diagnose.VerdictTLSIntercepted:   "something intercepts TLS on the way",
	diagnose.VerdictTLSFailed:        "TLS fails for a reason other than packet size",
	diagnose.VerdictTCPUnreachable:   "the server cannot be reached",
	diagnose.VerdictInconclusive:     "inconclusive",
}

var directionTexts = map[diagnose.Direction]string{
	diagnose.Upstream:   "from your network to the server",
	diagnose.Downstream: "from the server to your network",
	diagnose.Both:       "in both directions",
	diagnose.None:       "no direction affected",
	diagnose.Unknown:    "direction not determined",
}

func summaryText(d diagnose.Diagnosis) string {
	switch d.Verdict {
	case diagnose.VerdictOK:
		return fmt.Sprintf("Packets of every tested size, up to %d bytes, got through in both directions.", d.PathMTU)
	case diagnose.VerdictPMTUReduced:
		return fmt.Sprintf("The path carries packets of at most %d bytes, and your network tells the endpoints so: connections adapt and work.", d.PathMTU)
	case diagnose.VerdictBlackhole:
		return fmt.Sprintf("Packets larger than %d bytes are silently dropped %s, and no ICMP message reports it: "+
			"connections open, then hang during the TLS handshake. Your network team can fix this with one of the changes below.",
			d.PathMTU, directionTexts[d.Direction])
	}
	if len(d.Findings) > 0 {
		return d.Findings[0].Detail
	}
	return ""
}

// fixNotes say what to adapt before a fix's commands run as written.
var fixNotes = map[string]string{
	"clamp_mss": "The nft line adds to a table named filter (family ip, or ip6 for IPv6) with a chain named forward: " +
		"use your ruleset's names (nft list ruleset). The iptables line works as written.",
	"allow_icmp": "The nft line inserts into a table inet filter with a chain forward: use your ruleset's names. " +
		"The iptables line works as written. Routers on the path must also be allowed to send these messages.",
	"allow_fragments": "The nft line inserts into a table inet filter with a chain forward: use your ruleset's names. " +
		"The iptables line works as written.",
	"tunnel_mtu":         "Replace TUNNEL with the name of the tunnel or overlay interface (ip link shows them).",
	"server_mtu_probing": "On each of the service's servers, as root; the second line keeps the setting after a reboot.",
}

// pageHiddenFixes are fixes a page report leaves out: the browser's user
// cannot apply a Go-only stopgap, and the certificate chain measured is
// the diagnostic server's own, not the service's.
var pageHiddenFixes = map[string]bool{"go_disable_mlkem": true, "shrink_server_flight": true}

func (t *templates) view(rep *Report, base string, probe ...probeCommand) (*reportView, error) {
	v := &reportView{R: rep, Primary: rep.Primary(), Link: base + api.ReportPagePath + rep.ID, Probe: probe}
	if p := v.Primary; p != nil {
		v.Title = verdictTitles[p.Diagnosis.Verdict]
		v.Summary = summaryText(p.Diagnosis)
		v.DirectionText = directionTexts[p.Diagnosis.Direction]
		v.Bracket = bracketText(p)
		for _, f := range p.Diagnosis.Fixes {
			if rep.Source == "page" && pageHiddenFixes[f.Code] {
				continue
			}
			fv := fixView{Fix: f, Note: fixNotes[f.Code]}
			switch f.Where {
			case "network":
				v.NetworkFixes = append(v.NetworkFixes, fv)
			case "client":
				v.ClientFixes = append(v.ClientFixes, fv)
			default:
				v.OperatorFixes = append(v.OperatorFixes, fv)
			}
		}
	}
	for _, fr := range rep.Results {
		if len(fr.Rungs) == 0 {
			continue
		}
		l := ladder{Family: fr.Family, Rows: ladderRows(fr), Uncertain: uncertainNote(fr)}
		l.Strips = []strip{makeStrip(l.Rows, true), makeStrip(l.Rows, false)}
		v.Ladders = append(v.Ladders, l)
	}
	var b bytes.Buffer
	if err := t.text.Execute(&b, v); err != nil {
		return nil, err
	}
	v.Text = b.String()
	return v, nil
}

// ladderRows merges a family's tests by packet size (a refinement's
// upstream and downstream tests of one size are one row), smallest first.
func ladderRows(fr FamilyResult) []ladderRow {
	type res struct{ up, down diagnose.Result }
	by := map[int]*res{}
	var sizes []int
	merge := func(old *diagnose.Result, r diagnose.Result) {
		if *old == diagnose.Untested || *old == "" || r == diagnose.Passed {
			if r != diagnose.Untested && r != "" {
				*old = r
			}
		}
	}
	for _, r := range fr.Rungs {
		size := r.MSS + diagnose.IPHeader(fr.Family)
		if lm := fr.Evidence.LocalMTU; lm > 0 && size > lm {
			// The client offered a smaller MSS than the rung's (an IPv6
			// client's 1440 against rungs up to 1460): its packets, and the
			// server's, were no larger than its MTU.
			size = lm
		}
		x := by[size]
		if x == nil {
			x = &res{diagnose.Untested, diagnose.Untested}
			by[size] = x
			sizes = append(sizes, size)
		}
		merge(&x.up, r.Test.Up)
		merge(&x.down, r.Test.Down)
	}
	sort.Ints(sizes)
	var rows []ladderRow
	for _, size := range sizes {
		row := ladderRow{Size: size, Boundary: size == fr.Diagnosis.PathMTU}
		row.Up, row.UpSym, row.UpClass = mark(by[size].up)
		row.Down, row.DownSym, row.DownClass = mark(by[size].down)
		rows = append(rows, row)
	}
	return rows
}

// uncertainNote lists the sizes whose server side the join left unused.
func uncertainNote(fr FamilyResult) string {
	var sizes []string
	why := ""
	for _, r := range fr.Rungs {
		if r.Uncertain != "" {
			sizes = append(sizes, fmt.Sprint(r.MSS+diagnose.IPHeader(fr.Family)))
			if why == "" {
				why = r.Uncertain
			}
		}
	}
	if len(sizes) == 0 {
		return ""
	}
	what := fmt.Sprintf("%d sizes", len(sizes))
	if len(sizes) == 1 {
		what = "one size"
	}
	return fmt.Sprintf("For %s (%s bytes) the server saw connections from your address that your browser may not have made "+
		"(another browser or program on your network, such as a colleague's browser reconnecting to this server): "+
		"it did not use them, and these sizes rest on what your browser saw. The first reason: %s.",
		what, strings.Join(sizes, ", "), why)
}

const cellWidth = 12

func makeStrip(rows []ladderRow, up bool) strip {
	st := strip{Label: "from the server"}
	if up {
		st.Label = "to the server"
	}
	maxPass, minFail := 0, 0
	for i, r := range rows {
		c := cell{X: i * cellWidth, W: cellWidth, Size: r.Size, Class: r.DownClass, Sym: r.DownSym}
		if up {
			c.Class, c.Sym = r.UpClass, r.UpSym
		}
		if c.Class == "pass" {
			maxPass = r.Size
		}
		st.Cells = append(st.Cells, c)
	}
	for i, c := range st.Cells {
		if c.Class == "fail" && c.Size > maxPass && minFail == 0 {
			minFail = c.Size
		}
		if c.Size == maxPass {
			st.BoundaryX, st.BoundarySize = (i+1)*cellWidth, maxPass
		}
	}
	st.Width = len(rows) * cellWidth
	if len(rows) > 0 {
		st.First, st.Last = rows[0].Size, rows[len(rows)-1].Size
	}
	switch {
	case maxPass == 0 && minFail == 0:
		st.Sentence = "Not tested."
	case minFail == 0:
		st.Sentence = fmt.Sprintf("Every size tested up to %d bytes got through.", maxPass)
		st.BoundaryX = 0
	case maxPass == 0:
		st.Sentence = fmt.Sprintf("Every size tested was lost, from %d bytes.", minFail)
	case minFail == maxPass+1:
		st.Sentence = fmt.Sprintf("Up to %d bytes got through; %d bytes and larger were lost.", maxPass, minFail)
	default:
		st.Sentence = fmt.Sprintf("Up to %d bytes got through; %d bytes and larger were lost; sizes in between were not tested.", maxPass, minFail)
	}
	return st
}

// bracketText gives the path MTU's bracket in words when the sizes just
// above it were not tested, so the number is a lower bound.
func bracketText(p *FamilyResult) string {
	d := p.Diagnosis
	if d.Verdict != diagnose.VerdictBlackhole || d.PathMTU == 0 {
		return ""
	}
	lost := 0
	for _, t := range p.Evidence.Segments {
		for _, x := range []struct {
			r    diagnose.Result
			size int
		}{{t.Up, t.UpSize}, {t.Down, t.DownSize}} {
			if x.r == diagnose.Failed && x.size > d.PathMTU && (lost == 0 || x.size < lost) {
				lost = x.size
			}
		}
	}
	if lost == 0 || lost == d.PathMTU+1 {
		return ""
	}
	return fmt.Sprintf("The path MTU is between %d and %d bytes: %d got through, %d was lost, and the sizes in between were not tested.",
		d.PathMTU, lost-1, d.PathMTU, lost)
}

func mark(r diagnose.Result) (string, string, string) {
	switch r {
	case diagnose.Passed:
		return "passed", "✓", "pass"
	case diagnose.Failed:
		return "lost", "✗", "fail"
	}
	return "not tested", "–", "untested"
}
