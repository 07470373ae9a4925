package analyze

import (
	"fmt"
	"html"
	"io"
	"sort"
	"strings"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/packet"
)

// A ladder (sequence) diagram of one stalled handshake: the client on the
// left, the server on the right, time going down, one row per packet. A
// lost packet's arrow ends in the middle.

const (
	maxLadders    = 6
	maxLadderRows = 60
)

type ladderRow struct {
	t     float64 // ms since the flow's first packet (in the client capture's clock, pair mode)
	dir   int     // up: client to server
	label string
	lost  bool
	icmp  bool    // an ICMP too-big towards the sender
	arr   float64 // arrival, ms; < 0 unknown (single mode) or lost
}

type ladder struct {
	title          string
	client, server string
	outcome        diagnose.Outcome
	rows           []ladderRow
	more           int
}

// stalledLadders draws the flows of stalled handshakes, at most
// maxLadders.
func stalledLadders(rs []*record, m *matching) []*ladder {
	var out []*ladder
	for _, r := range rs {
		if len(out) >= maxLadders {
			break
		}
		if r.f != nil {
			out = append(out, newLadder(r, m))
		}
	}
	return out
}

func ctlLabel(fl packet.TCPFlags) string {
	switch {
	case fl.Has(packet.SYN | packet.ACK):
		return "SYN-ACK"
	case fl.Has(packet.SYN):
		return "SYN"
	case fl.Has(packet.RST):
		return "RST"
	case fl.Has(packet.FIN):
		return "FIN"
	case fl.Has(packet.ACK):
		return "ACK"
	}
	return fl.String()
}

func newLadder(r *record, m *matching) *ladder {
	f := r.f
	l := &ladder{client: f.client.String(), server: f.server.String(), outcome: r.outcome}
	l.title = fmt.Sprintf("%s → %s: %s", l.client, l.server, l.outcome)
	var off int64
	if r.paired && m != nil {
		off = m.offset
	}
	start := f.first
	ms := func(t int64) float64 { return float64(t-start) / 1e6 }
	var rows []ladderRow
	// Control packets: each direction's from its sender's capture.
	sentCtl := func(sender *flowState, di int, conv int64, rcv *flowState, rconv int64) {
		used := map[int]bool{}
		for _, c := range sender.ctl {
			if int(c.dir) != di {
				continue
			}
			label := fmt.Sprintf("%s %d B", ctlLabel(c.flags), c.ipLen)
			if c.sack.End > 0 {
				label = fmt.Sprintf("ACK with SACK %d-%d", c.sack.Start, c.sack.End)
			}
			row := ladderRow{t: ms(c.t + conv), dir: di, label: label, arr: -1}
			if rcv != nil {
				for i, x := range rcv.ctl {
					if int(x.dir) == di && x.flags == c.flags && x.sack == c.sack && !used[i] && x.t+rconv >= c.t+conv-int64(1e6) {
						used[i] = true
						row.arr = ms(x.t + rconv)
						break
					}
				}
				if row.arr < 0 {
					row.lost = true
				}
			}
			rows = append(rows, row)
		}
	}
	if r.paired {
		sentCtl(f, up, 0, r.srv, -off)
		sentCtl(r.srv, down, -off, f, 0)
	} else {
		sentCtl(f, up, 0, nil, 0)
		sentCtl(f, down, 0, nil, 0)
	}
	for di := range 2 {
		conv := int64(0)
		if r.paired && di == down {
			conv = -off
		}
		for _, w := range r.wire[di] {
			label := fmt.Sprintf("%d B  seq %d-%d", w.ipLen, w.Start, w.End)
			if w.retrans {
				label += " (resent)"
			}
			if w.inferred {
				label += " (never seen here)"
			}
			row := ladderRow{t: ms(w.t + conv), dir: di, label: label, arr: -1}
			switch w.status {
			case lost:
				row.lost = true
			case delivered:
				if w.arrival != 0 {
					row.arr = ms(w.arrival + conv)
				}
			}
			rows = append(rows, row)
		}
	}
	icmpFrom := func(fs *flowState, conv int64) {
		for _, tb := range fs.tooBig {
			rows = append(rows, ladderRow{t: ms(tb.t + conv), dir: 1 - int(tb.dir), icmp: true, arr: -1,
				label: fmt.Sprintf("ICMP too-big from %s, MTU %d", tb.from, tb.mtu)})
		}
	}
	icmpFrom(f, 0)
	if r.paired {
		icmpFrom(r.srv, -off)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].t < rows[j].t })
	if len(rows) > maxLadderRows {
		l.more = len(rows) - maxLadderRows
		rows = rows[:maxLadderRows]
	}
	l.rows = rows
	return l
}

// WriteLadderText writes the ladders of the stalled handshakes as text.
func (res *Result) WriteLadderText(w io.Writer) {
	for _, l := range res.stalled {
		fmt.Fprintf(w, "\n  %s\n", l.title)
		fmt.Fprintf(w, "  %9s  %-28s %28s\n", "ms", "client "+l.client, "server "+l.server)
		for _, r := range l.rows {
			var arrow string
			switch {
			case r.icmp && r.dir == down:
				arrow = "  <~~~~~~~~~~~~~~~~~ ICMP   "
			case r.icmp:
				arrow = "  ICMP ~~~~~~~~~~~~~~~~~~>  "
			case r.lost && r.dir == up:
				arrow = "  ------------X    lost     "
			case r.lost:
				arrow = "    lost     X------------  "
			case r.dir == up:
				arrow = "  ----------------------->  "
			default:
				arrow = "  <-----------------------  "
			}
			left, right := r.label, ""
			if r.dir == down {
				left, right = "", r.label
			}
			fmt.Fprintf(w, "  %9.3f  %-28s%s%s\n", r.t, clip(left, 28), arrow, right)
		}
		if l.more > 0 {
			fmt.Fprintf(w, "  (%d more packets not shown)\n", l.more)
		}
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// StalledHandshakes is the number of ladder diagrams the result holds.
func (res *Result) StalledHandshakes() int { return len(res.stalled) }

// WriteSVG writes the ladder diagrams of the stalled handshakes as one SVG
// document.
func (res *Result) WriteSVG(w io.Writer) error {
	const (
		width   = 960
		xc      = 250 // client line
		xs      = 710 // server line
		rowH    = 26
		headH   = 70
		gapH    = 40
		slant   = 16
		summary = 120
	)
	height := summary
	for _, l := range res.stalled {
		height += headH + rowH*(len(l.rows)+1) + gapH
	}
	if len(res.stalled) == 0 {
		height += 40
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">`+"\n", width, height, width, height)
	b.WriteString(`<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker>` +
		`<marker id="ai" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#b26b00"/></marker></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="20" y="30" font-size="18" font-weight="bold">mtuscope analyze: %s, direction %s, path MTU %s</text>`+"\n",
		esc(string(res.Verdict)), esc(string(res.Direction)), esc(mtuText(res)))
	fmt.Fprintf(&b, `<text x="20" y="55" fill="#444">upstream: largest delivered %d B, smallest lost %s; downstream: largest delivered %d B, smallest lost %s; ICMP too-big seen: %d</text>`+"\n",
		res.Upstream.LargestDelivered, lostText(res.Upstream.SmallestLost), res.Downstream.LargestDelivered, lostText(res.Downstream.SmallestLost), res.ICMPTooBig)
	fmt.Fprintf(&b, `<text x="20" y="80" fill="#444">%s</text>`+"\n", esc(legend(res)))
	y := summary
	if len(res.stalled) == 0 {
		fmt.Fprintf(&b, `<text x="20" y="%d">No stalled handshake.</text>`+"\n", y+20)
	}
	for _, l := range res.stalled {
		fmt.Fprintf(&b, `<text x="20" y="%d" font-size="15" font-weight="bold">%s</text>`+"\n", y+18, esc(l.title))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold">client %s</text>`+"\n", xc, y+48, esc(l.client))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold">server %s</text>`+"\n", xs, y+48, esc(l.server))
		top, bottom := y+headH-10, y+headH+rowH*(len(l.rows)+1)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="2"/>`+"\n", xc, top, xc, bottom)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="2"/>`+"\n", xs, top, xs, bottom)
		mid := (xc + xs) / 2
		for i, r := range l.rows {
			ry := y + headH + rowH*i + 8
			fmt.Fprintf(&b, `<text x="20" y="%d" fill="#666">%.3f ms</text>`+"\n", ry+4, r.t)
			x1, x2 := xc, xs
			if r.dir == down {
				x1, x2 = xs, xc
			}
			color, marker := "#333", "ah"
			switch {
			case r.icmp:
				// from the middle of the path back to the sender of the packet it is about
				color, marker = "#b26b00", "ai"
				fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5" stroke-dasharray="5,3" marker-end="url(#%s)"/>`+"\n", mid, ry, x2, ry+slant, color, marker)
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="%s" font-size="12">%s</text>`+"\n", (mid+x2)/2, ry-3, color, esc(r.label))
				continue
			case r.lost:
				color = "#c0392b"
				end := mid
				fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`+"\n", x1, ry, end, ry+slant/2, color)
				cy := ry + slant/2
				fmt.Fprintf(&b, `<path d="M%d,%d L%d,%d M%d,%d L%d,%d" stroke="%s" stroke-width="2.5"/>`+"\n", end-6, cy-6, end+6, cy+6, end-6, cy+6, end+6, cy-6, color)
				// the label on the empty side of the cross
				lx, anchor := end+14, "start"
				if r.dir == down {
					lx, anchor = end-14, "end"
				}
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="%s" fill="%s" font-size="12">LOST: %s</text>`+"\n", lx, cy+4, anchor, color, esc(r.label))
				continue
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5" marker-end="url(#%s)"/>`+"\n", x1, ry, x2, ry+slant, color, marker)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="12">%s</text>`+"\n", mid, ry-1, esc(r.label))
		}
		if l.more > 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#666">(%d more packets not shown)</text>`+"\n", (xc+xs)/2, bottom+14, l.more)
		}
		y += headH + rowH*(len(l.rows)+1) + gapH
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

func lostText(n int) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d B", n)
}

func mtuText(res *Result) string {
	switch b := res.PathMTURange; {
	case res.PathMTU == 0 && b.Delivered > 0 && b.Lost > 0:
		return fmt.Sprintf("between %d and %d B (%s)", b.Delivered, b.Lost-1, b.Reason())
	case res.PathMTU == 0:
		return "unknown"
	case res.PathMTUExact || res.PathMTURange.Lost == 0:
		return fmt.Sprintf("%d B", res.PathMTU)
	}
	return fmt.Sprintf("%d-%d B", res.PathMTU, res.PathMTURange.Lost-1)
}

func legend(res *Result) string {
	if res.Mode == ModePair {
		return "Black: sent at one end and seen at the other. Red, ending in the middle: sent, never seen at the other end. Times in the client capture's clock."
	}
	return "One capture: black arrows were delivered (acknowledged or seen arriving); red ones, ending in the middle, were lost."
}
