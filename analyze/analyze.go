// Package analyze reads packet captures offline and says what they show
// about the path: every TLS handshake of one capture classified, and a
// client-side capture matched against a server-side capture segment by
// segment, so that what was sent at one end and never seen at the other is
// listed with its direction, size and time. Its conclusion goes through
// package diagnose, worded as probe words it. Files are streamed: memory
// is bounded by Limits, not by the size of the capture.
package analyze

import (
	"errors"
	"fmt"
	"time"

	"github.com/mtuscope/mtuscope/capture"
)

// Stats count what one capture held.
type Stats struct {
	// Packets is the number of records read; Undecoded those whose headers
	// did not decode (not IP, truncated, malformed).
	Packets   uint64 `json:"packets"`
	Undecoded uint64 `json:"undecoded"`
	// TCPPackets is the TCP packets seen.
	TCPPackets uint64 `json:"tcp_packets"`
	// Flows is the TCP connections followed (their SYN or SYN-ACK was seen).
	Flows int `json:"flows"`
	// PacketsWithoutSYN were TCP packets of no connection whose start the
	// capture holds (its SYN missed, or after the flow was forgotten): not
	// analysed.
	PacketsWithoutSYN uint64 `json:"packets_without_syn"`
	// FlowsUntracked is the connections pushed out of the full flow table
	// (Limits.MaxFlows) before they ended: judged on what came until then.
	FlowsUntracked int `json:"flows_untracked"`
	// FlowsNotListed is the finished connections that count in the figures
	// but were not kept for listing and pairing (Limits.MaxRecords).
	FlowsNotListed int `json:"flows_not_listed"`
	// First and Last are the first and last packet's timestamps.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// TruncatedAt, set when the file ends inside a record (a capture cut
	// short), is the byte offset of that record: the capture was analysed
	// up to there.
	TruncatedAt *int64 `json:"truncated_at,omitempty"`
}

// capResult is what reading one capture gave.
type capResult struct {
	path    string
	stats   Stats
	records []*record
	icmp    []icmpEvent
	icmpN   int
	frags   map[fragKey]int
	fragN   int
	hs      *tracked
	warning string // the file was cut short: analysed up to the cut
}

// read streams one capture through package flow's tracker and the
// analyzer's record of its flows (table). In single-capture mode (fold set) each finished flow is
// folded into the figures at once and kept only for a ladder diagram; in
// pair mode every flow is kept, up to Limits.MaxRecords, for the pairing.
func read(path string, lim Limits, fold func(*record)) (*capResult, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	res := &capResult{path: path}
	// One capture: the wire packets of a flow that keeps none go back to
	// scratch for the next one; records are allocated in chunks.
	var scratch [2][]wirePkt
	var recs []record
	res.hs = newTracked(lim)
	tb := newTable(lim, res.hs, func(f *flowState) bool {
		w := [2][]wirePkt{f.judgeSingle(up, scratch[up]), f.judgeSingle(down, scratch[down])}
		scratch = [2][]wirePkt{}
		if len(recs) == cap(recs) {
			recs = make([]record, 0, 256)
		}
		recs = append(recs, classify(f, w))
		r := &recs[len(recs)-1]
		if fold != nil {
			// One capture: the figures take what they need now; a record
			// keeps its packets only for a ladder diagram.
			fold(r)
			if !r.handshake || !r.stalled() && r.lostN == 0 {
				r.f, r.wire = nil, [2][]wirePkt{}
				scratch = [2][]wirePkt{w[up][:0], w[down][:0]}
			}
			if !r.handshake {
				recs = recs[:len(recs)-1]
				return true
			}
		}
		if len(res.records) < lim.MaxRecords {
			res.records = append(res.records, r)
		} else {
			res.stats.FlowsNotListed++
		}
		return r.f == nil
	})
	first, last, err := pipeline(src, &res.stats, tb)
	var fe *capture.FileError
	if errors.Is(err, capture.ErrTruncated) && errors.As(err, &fe) {
		// A capture cut short (tcpdump killed while writing): what came
		// before the cut is analysed, with a warning.
		res.stats.TruncatedAt = &fe.Offset
		res.warning = fmt.Sprintf("%v; analysed up to there", err)
	} else if err != nil {
		return nil, err
	}
	if res.stats.Packets == 0 {
		if err != nil {
			return nil, fmt.Errorf("capture %s: holds no packets (%w)", path, err)
		}
		return nil, fmt.Errorf("capture %s: holds no packets", path)
	}
	tb.end(time.Unix(0, last))
	res.stats.TCPPackets = tb.stats.TCPPackets
	res.stats.Flows = tb.stats.Flows
	res.stats.PacketsWithoutSYN = tb.stats.PacketsWithoutSYN
	res.stats.FlowsUntracked = tb.stats.FlowsUntracked
	res.stats.First, res.stats.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
	res.icmp, res.icmpN, res.frags, res.fragN = tb.icmp, tb.icmpCount, tb.frags, tb.fragCount
	return res, nil
}

// File analyses one capture.
func File(path string, lim Limits) (*Result, error) {
	lim = lim.withDefaults()
	s := newSummary()
	c, err := read(path, lim, s.add)
	if err != nil {
		return nil, err
	}
	s.addCapture(c)
	s.addTracked(c.hs)
	res := s.result(ModeSingle)
	res.Files = Files{Single: path}
	res.Stats = map[string]Stats{"capture": c.stats}
	res.Warnings = warnings(c)
	var stalled []*record
	res.Handshakes, stalled = joinHandshakes(c.hs, c.hs.byHandshake(c.records))
	res.Outcomes, res.HandshakesNotListed = c.hs.outcomes, total(c.hs.outcomes)-len(res.Handshakes)
	res.stalled = stalledLadders(stalled, nil)
	return res, nil
}

// Pair analyses a client-side and a server-side capture of the same
// traffic: flows matched across NAT, clock offset estimated, every wire
// packet of each direction looked for at the other end.
func Pair(clientPath, serverPath string, lim Limits) (*Result, error) {
	lim = lim.withDefaults()
	cl, err := read(clientPath, lim, nil)
	if err != nil {
		return nil, err
	}
	sv, err := read(serverPath, lim, nil)
	if err != nil {
		return nil, err
	}
	m := match(cl.records, sv.records)
	s := newSummary()
	var listed []*record
	for _, p := range m.pairs {
		r := p.judge(m.offset, m.tolerance, cl.stats.Last.UnixNano(), sv.stats.Last.UnixNano())
		s.add(r)
		listed = append(listed, r)
	}
	for _, r := range m.unmatchedClient {
		s.add(r)
	}
	for _, r := range m.unmatchedServer {
		s.add(r)
	}
	s.addCapture(cl)
	s.addCapture(sv)
	// The client capture's handshakes, and those only the server capture holds.
	hs, stalled := pairHandshakes(cl, sv, listed, m)
	s.addTracked(cl.hs)
	for i := cl.hs.n; i < len(hs); i++ {
		s.addHandshake(&hs[i].Handshake)
	}
	res := s.result(ModePair)
	res.Files = Files{Client: clientPath, Server: serverPath}
	res.Stats = map[string]Stats{"client": cl.stats, "server": sv.stats}
	res.Warnings = warnings(cl, sv)
	n, rep := len(m.pairs), m.report()
	res.MatchedFlows, res.Matching = &n, &rep
	res.Handshakes, res.stalled = hs, stalled
	res.HandshakesNotListed = total(res.Outcomes) - len(res.Handshakes)
	return res, nil
}

// warnings are the captures' warnings, nil when there is none.
func warnings(cs ...*capResult) []string {
	var w []string
	for _, c := range cs {
		if c.warning != "" {
			w = append(w, c.warning)
		}
	}
	return w
}

// pairHandshakes lists the client capture's handshakes joined to their
// paired records, then the handshakes found only in the server capture,
// and returns the ladders of the stalled ones.
func pairHandshakes(cl, sv *capResult, paired []*record, m *matching) ([]Handshake, []*ladder) {
	list, stalled := joinHandshakes(cl.hs, cl.hs.byHandshake(paired, m.unmatchedClient))
	onlyServer := sv.hs.byHandshake(m.unmatchedServer)
	for i, h := range sv.hs.all() {
		if r := onlyServer[i]; r != nil {
			list = append(list, Handshake{Handshake: h, LostPackets: r.lostN})
		}
	}
	return list, stalledLadders(stalled, m)
}
