package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	htmltemplate "html/template"
	"net/netip"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/web"
)

// Report is one stored diagnosis: who asked, and per family what was
// measured and what the diagnose package concluded from it.
type Report struct {
	ID      string         `json:"id"`
	Created time.Time      `json:"created"`
	Source  string         `json:"source"` // "page" or "probe"
	Version string         `json:"server_version"`
	Client  ClientInfo     `json:"client"`
	Target  string         `json:"target,omitempty"` // what probe tested
	RTTms   int            `json:"rtt_ms,omitempty"`
	Results []FamilyResult `json:"results"`
}

// ClientInfo is what the server knows of the client's network.
type ClientInfo struct {
	IP        string `json:"ip"`
	Family    int    `json:"family"`
	ASN       uint32 `json:"asn,omitempty"`
	Org       string `json:"org,omitempty"`
	Group     string `json:"group"`
	SYNMSS    int    `json:"syn_mss,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
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
	r, err := htmltemplate.ParseFS(fs, "report.html")
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
	Ladders       []ladder
	Text          string
}

type ladder struct {
	Family int
	Rows   []ladderRow
}

type ladderRow struct {
	Size               int
	Up, Down           string
	UpClass, DownClass string
	Boundary           bool
}

var verdictTitles = map[diagnose.Verdict]string{
	diagnose.VerdictOK:               "the path is clean",
	diagnose.VerdictPMTUReduced:      "smaller path MTU, handled correctly",
	diagnose.VerdictBlackhole:        "large packets vanish (path MTU black hole)",
	diagnose.VerdictFragmentsDropped: "IP fragments are dropped",
	diagnose.VerdictSplitIntolerant:  "large TLS ClientHellos are dropped",
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

func (t *templates) view(rep *Report) (*reportView, error) {
	v := &reportView{R: rep, Primary: rep.Primary()}
	if p := v.Primary; p != nil {
		v.Title = verdictTitles[p.Diagnosis.Verdict]
		v.Summary = summaryText(p.Diagnosis)
		v.DirectionText = directionTexts[p.Diagnosis.Direction]
	}
	for _, fr := range rep.Results {
		if len(fr.Rungs) == 0 {
			continue
		}
		l := ladder{Family: fr.Family}
		for _, r := range fr.Rungs {
			row := ladderRow{Size: r.MSS + diagnose.IPHeader(fr.Family)}
			row.Boundary = row.Size == fr.Diagnosis.PathMTU
			row.Up, row.UpClass = mark(r.Test.Up)
			row.Down, row.DownClass = mark(r.Test.Down)
			l.Rows = append(l.Rows, row)
		}
		v.Ladders = append(v.Ladders, l)
	}
	var b bytes.Buffer
	if err := t.text.Execute(&b, v); err != nil {
		return nil, err
	}
	v.Text = b.String()
	return v, nil
}

func mark(r diagnose.Result) (string, string) {
	switch r {
	case diagnose.Passed:
		return "✓ passed", "pass"
	case diagnose.Failed:
		return "✗ lost", "fail"
	}
	return "– not tested", "untested"
}

// clientGroup names the client's network when no ASN is known.
func clientGroup(ip netip.Addr, asnFound bool, asn uint32, prefix netip.Prefix) string {
	if asnFound {
		return fmt.Sprintf("AS%d", asn)
	}
	return strings.TrimSpace(prefix.String())
}
