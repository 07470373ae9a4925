package monitor

import (
	"sort"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/textsafe"
)

// NetworkSummary is one network's figures since the monitor started, and
// its conclusion: the alert's diagnosis when it fired, otherwise what the
// handshakes show without a significant stall.
type NetworkSummary struct {
	Network    string                   `json:"network"`
	ASN        uint32                   `json:"asn"`
	Org        string                   `json:"org"`
	Handshakes int                      `json:"handshakes"`
	Outcomes   map[diagnose.Outcome]int `json:"outcomes"`
	// Alert says the network alerted at some point; Firing that it still does.
	Alert     bool               `json:"alert"`
	Firing    bool               `json:"firing"`
	Verdict   diagnose.Verdict   `json:"verdict"`
	Direction diagnose.Direction `json:"direction"`
	// PathMTU is the bracket: the largest packet seen delivered and the
	// smallest seen lost, per direction (0: none seen).
	PathMTU   Bracket            `json:"path_mtu"`
	Diagnosis diagnose.Diagnosis `json:"diagnosis"`
	// Trouble ranks networks for the operator view: stalled handshakes,
	// weighted up while alerting.
	Trouble float64 `json:"trouble"`
	// Series is the per-bucket history the ring still holds, oldest first.
	Series []Point `json:"series,omitempty"`
	// LastAlert is the firing alert, or the last resolved one.
	LastAlert *Alert `json:"last_alert,omitempty"`
	// Features are its hellos by what they carried, since the start;
	// FeatureAlert its firing feature alert, or the last resolved one.
	Features     []FeatureFigures `json:"features,omitempty"`
	FeatureAlert *Alert           `json:"feature_alert,omitempty"`
}

// FeatureFigures are one network's hellos with and without one feature
// (hellos the capture could not tell about are in neither).
type FeatureFigures struct {
	Feature          string `json:"feature"`
	WithCompleted    int    `json:"with_completed"`
	WithFailed       int    `json:"with_failed"`
	WithoutCompleted int    `json:"without_completed"`
	WithoutFailed    int    `json:"without_failed"`
}

// Bracket is the path-MTU bracket of a network, IP packet sizes in bytes.
type Bracket struct {
	UpDelivered   int `json:"up_delivered"`
	UpLost        int `json:"up_lost"`
	DownDelivered int `json:"down_delivered"`
	DownLost      int `json:"down_lost"`
}

// Point is one bucket of one network.
type Point struct {
	Start     time.Time `json:"start"`
	Completed int       `json:"completed"`
	Stalled   int       `json:"stalled"`
	Failed    int       `json:"failed"`
}

// Snapshot is a consistent copy of the monitor's state.
type Snapshot struct {
	Bucket   time.Duration            `json:"-"`
	Now      time.Time                `json:"now"` // start of the current bucket (packet time)
	Totals   map[diagnose.Outcome]int `json:"totals"`
	Networks []NetworkSummary         `json:"networks"` // most trouble first
	Server   *Alert                   `json:"server_alert,omitempty"`
	Alerts   []Alert                  `json:"alerts"` // every change, oldest first
	Folded   uint64                   `json:"folded"`
	// Unverified are the handshakes whose SYN exchange the capture did not
	// see (a capture from the middle of connections, or forged sources):
	// counted here, evidence for nothing.
	Unverified map[diagnose.Outcome]int `json:"unverified"`
	// Evicted counts networks forgotten to make room in the full table.
	Evicted uint64 `json:"networks_evicted"`
}

// Snapshot copies the state; withSeries adds each network's bucket history.
func (m *Monitor) Snapshot(withSeries bool) Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{Bucket: m.cfg.Bucket, Now: m.start(m.cur), Totals: m.total.Map(), Folded: m.folded,
		Unverified: m.unverified.Map(), Evicted: m.pruned, Alerts: append([]Alert(nil), m.history...)}
	if m.server.alert != nil {
		a := *m.server.alert
		s.Server = &a
	}
	for _, n := range m.nets {
		s.Networks = append(s.Networks, m.summary(n, withSeries))
	}
	sort.Slice(s.Networks, func(i, j int) bool {
		a, b := &s.Networks[i], &s.Networks[j]
		if a.Trouble != b.Trouble {
			return a.Trouble > b.Trouble
		}
		if a.Handshakes != b.Handshakes {
			return a.Handshakes > b.Handshakes
		}
		return a.Network < b.Network
	})
	return s
}

func (m *Monitor) summary(n *network, withSeries bool) NetworkSummary {
	ns := NetworkSummary{Network: n.key, ASN: n.asn, Org: n.org, Handshakes: int(n.total.Total()),
		Outcomes: n.total.Map(), Alert: n.alerted, Firing: n.firing}
	ev := n.totalEv
	up, down := n.totalStall[0], n.totalStall[1]
	ns.Trouble = float64(up + down)
	switch {
	case n.alert != nil:
		ns.Diagnosis = n.alert.Diagnosis
		ns.Trouble += 1e6
		a := *n.alert
		ns.LastAlert = &a
	case n.lastAlert != nil:
		ns.Diagnosis = n.lastAlert.Diagnosis
		ns.Trouble += 1e3
		a := *n.lastAlert
		ns.LastAlert = &a
	case n.featAlert != nil:
		ns.Diagnosis = n.featAlert.Diagnosis
		ns.Trouble += 1e6
	case n.featLastAlert != nil:
		ns.Diagnosis = n.featLastAlert.Diagnosis
		ns.Trouble += 1e3
	default:
		ns.Diagnosis = diagnose.Passive(ev.passive(&n.total, up, down, false))
	}
	switch {
	case n.featAlert != nil:
		a := *n.featAlert
		ns.FeatureAlert = &a
		ns.Firing, ns.Alert = true, true
	case n.featLastAlert != nil:
		a := *n.featLastAlert
		ns.FeatureAlert = &a
		ns.Alert = true
	}
	for f, c := range n.featTotal {
		if c[0].total()+c[1].total() > 0 {
			ns.Features = append(ns.Features, FeatureFigures{Feature: features[f].name, WithCompleted: c[1].completed(),
				WithFailed: c[1].failed(), WithoutCompleted: c[0].completed(), WithoutFailed: c[0].failed()})
		}
	}
	ns.Verdict, ns.Direction = ns.Diagnosis.Verdict, ns.Diagnosis.Direction
	p := ev.passive(&n.total, up, down, n.alerted)
	ns.PathMTU = Bracket{UpDelivered: p.UpDelivered, UpLost: p.UpLost, DownDelivered: p.DownDelivered, DownLost: p.DownLost}
	if withSeries {
		for b := m.cur - int64(len(n.ring)) + 1; b <= m.cur; b++ {
			t := n.sum(b, b)
			ns.Series = append(ns.Series, Point{Start: m.start(b), Completed: int(t.completed), Stalled: t.stalls(), Failed: int(t.failed)})
		}
	}
	return ns
}

// Exported is the per-network metric state: the networks with their own
// series (top N by volume plus alerting) and everything else as other.
type Exported struct {
	Networks []ExportedNetwork
	Other    Counts
	Total    Counts
	ByFamily [2]Counts
	Tracked  int
	Folded   uint64
	// Unverified are the handshakes that were evidence for nothing;
	// Evicted the networks forgotten to make room.
	Unverified Counts
	Evicted    uint64
	Firing     int
	Server     bool
	// Features are every verified hello by feature (FeatureNames order),
	// without ([f][0]) and with ([f][1]) it, completed and failed.
	Features [][2][2]uint64
}

// ExportedNetwork is one network's series.
type ExportedNetwork struct {
	Network string
	ASN     uint32
	Org     string
	Counts  Counts // handshakes counted while it had its own series
	Firing  bool
	Rate    float64 // completion rate over the window, -1 without attempts
	// Features are its hellos with each feature (FeatureNames order),
	// completed and failed, counted while it had its own series;
	// FeatureFiring names the feature its feature alert is for ("": none).
	Features      [][2]uint64
	FeatureFiring string
}

// Exported copies the state the metrics export.
func (m *Monitor) Exported() Exported {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := Exported{Other: m.other, Total: m.total, ByFamily: m.byFamily, Tracked: len(m.nets), Folded: m.folded,
		Unverified: m.unverified, Evicted: m.pruned, Server: m.server.firing}
	for _, f := range m.featAll {
		e.Features = append(e.Features, [2][2]uint64{{uint64(f[0][0]), uint64(f[0][1])}, {uint64(f[1][0]), uint64(f[1][1])}})
	}
	for _, n := range m.nets {
		if n.firing {
			e.Firing++
		}
		if !n.exportedNow {
			continue
		}
		w := n.sum(m.cur-int64(m.cfg.Window), m.cur)
		r := -1.0
		if w.attempts() > 0 {
			r = float64(w.completed) / float64(w.attempts())
		}
		x := ExportedNetwork{Network: n.key, ASN: n.asn, Org: n.org, Counts: n.exported, Firing: n.firing, Rate: r}
		for _, f := range n.featExp {
			x.Features = append(x.Features, [2]uint64{uint64(f[1][0]), uint64(f[1][1])})
		}
		if n.featAlert != nil {
			x.FeatureFiring = features[n.featIdx].name
		}
		e.Networks = append(e.Networks, x)
	}
	sort.Slice(e.Networks, func(i, j int) bool { return e.Networks[i].Network < e.Networks[j].Network })
	return e
}

// Outcomes lists the outcome names in counter order.
func Outcomes() []diagnose.Outcome { return append([]diagnose.Outcome(nil), outcomes...) }

// Preload puts stored buckets (from before a restart) back into the
// networks' histories, so that the chart and the alerting window go on
// where they stopped. Call it before the first handshake; buckets older
// than the history are ignored, the network table's bound holds.
func (m *Monitor) Preload(bs []BucketRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || len(bs) == 0 {
		return
	}
	newest := int64(0)
	for _, b := range bs {
		newest = max(newest, m.index(b.Start))
	}
	m.cur = newest // for the snapshot; the first handshake sets the clock
	for _, b := range bs {
		idx := m.index(b.Start)
		if newest-idx >= int64(m.cfg.History) {
			continue
		}
		n := m.nets[b.Network]
		if n == nil {
			if len(m.nets) >= m.cfg.MaxNetworks || b.Network == OtherNetwork {
				continue
			}
			// Escaped again: a database written before names were escaped
			// where they enter (see watch) may hold them raw.
			n = &network{key: b.Network, asn: b.ASN, org: textsafe.Escape(b.Org), ring: make([]tally, m.cfg.History)}
			for i := range n.ring {
				n.ring[i].index = -1
			}
			m.nets[b.Network] = n
		}
		t := n.bucket(idx)
		t.completed, t.stallUp, t.stallDown, t.failed = uint32(b.Completed), uint32(b.StalledUp), uint32(b.StalledDn), uint32(b.Failed)
		n.lastSeen, n.since, n.recentIdx = max(n.lastSeen, idx), 0, newest+1
	}
}
