// Package monitor groups classified TLS handshakes by client network,
// counts them in time buckets and raises an alert when one network's
// handshakes stall while the others' complete. It keeps no clock of its
// own: time is the handshakes' packet timestamps (and Advance's argument),
// so replaying a capture gives the alerts a live run gave.
package monitor

import (
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
)

// Config sets the monitor's windows and thresholds. The zero value of a
// field means its default (see Defaults).
type Config struct {
	// Bucket is the width of a time bucket and the evaluation interval.
	Bucket time.Duration `yaml:"bucket" json:"bucket"`
	// Window is how many buckets the fire test looks at besides the last
	// one alone.
	Window int `yaml:"window" json:"window"`
	// History is how many buckets each network keeps for the chart.
	History int `yaml:"history" json:"history"`
	// MinStalls is the fewest stalled handshakes that can make an alert.
	MinStalls int `yaml:"min_stalls" json:"min_stalls"`
	// MinOthers is the fewest handshakes the other networks must have made
	// (completed or stalled) for a comparison.
	MinOthers int `yaml:"min_others" json:"min_others"`
	// Alpha is the one-sided binomial test's level for firing.
	Alpha float64 `yaml:"alpha" json:"alpha"`
	// Prior is the weight, in handshakes, of the others' rate that a
	// network's own rate is shrunk towards.
	Prior float64 `yaml:"prior" json:"prior"`
	// MinDrop is how far (absolute) the shrunk rate must lie below the
	// others' rate.
	MinDrop float64 `yaml:"min_drop" json:"min_drop"`
	// ResolveAlpha is the looser level a firing network must clear, and
	// ResolveAfter how many evaluations in a row with handshakes it must
	// clear it, to resolve (hysteresis). A network whose rate lies MinDrop
	// below the healthy majority's at this level leaves the reference the
	// others are compared with (see reference).
	ResolveAlpha float64 `yaml:"resolve_alpha" json:"resolve_alpha"`
	ResolveAfter int     `yaml:"resolve_after" json:"resolve_after"`
	// StaleAfter resolves a firing alert whose network sent nothing for
	// that long.
	StaleAfter time.Duration `yaml:"stale_after" json:"stale_after"`
	// ServerMin is the fewest TLS attempts in a bucket for the server-wide
	// test, and ServerBreadth the share of networks with attempts that
	// must be exceeded by the failing ones for a drop to count as
	// server-wide.
	ServerMin     int     `yaml:"server_min" json:"server_min"`
	ServerBreadth float64 `yaml:"server_breadth" json:"server_breadth"`
	// MaxNetworks caps the networks tracked one by one. A new network
	// in a full table takes the place of the least useful ones (see
	// makeRoom); only when every one alerts is it folded into "other".
	MaxNetworks int `yaml:"max_networks" json:"max_networks"`
	// TopN is how many networks, by volume, get their own metric series.
	TopN int `yaml:"top_n" json:"top_n"`
}

// Defaults returns the configuration used for zero fields.
func Defaults() Config {
	return Config{
		Bucket: time.Minute, Window: 5, History: 60, MinStalls: 5, MinOthers: 20,
		Alpha: 1e-6, Prior: 20, MinDrop: 0.25, ResolveAlpha: 0.05, ResolveAfter: 2,
		StaleAfter: 30 * time.Minute, ServerMin: 20, ServerBreadth: 0.5,
		MaxNetworks: 2000, TopN: 50,
	}
}

func (c *Config) fill() {
	d := Defaults()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	setf := func(v *float64, def float64) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.Bucket <= 0 {
		c.Bucket = d.Bucket
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = d.StaleAfter
	}
	set(&c.Window, d.Window)
	set(&c.History, d.History)
	set(&c.MinStalls, d.MinStalls)
	set(&c.MinOthers, d.MinOthers)
	set(&c.ResolveAfter, d.ResolveAfter)
	set(&c.ServerMin, d.ServerMin)
	set(&c.MaxNetworks, d.MaxNetworks)
	set(&c.TopN, d.TopN)
	setf(&c.Alpha, d.Alpha)
	setf(&c.Prior, d.Prior)
	setf(&c.MinDrop, d.MinDrop)
	setf(&c.ResolveAlpha, d.ResolveAlpha)
	setf(&c.ServerBreadth, d.ServerBreadth)
	if c.History < c.Window+1 {
		c.History = c.Window + 1
	}
}

// Options are the monitor's collaborators.
type Options struct {
	// Lookup maps a client address to its network; nil groups by /24 and /48.
	Lookup func(netip.Addr) asn.Result
	// Notify receives every alert change (firing, resolved) in order, from
	// the goroutine that called Observe, Advance or Flush, with the
	// monitor's lock held: it must queue, not block, and not call the
	// Monitor.
	Notify func(Alert)
	// Bucket, if set, receives each network's closed bucket (for storage),
	// under the same rules as Notify.
	Bucket func(BucketRecord)
	// PageURL is the diagnostic page's address, put in every alert.
	PageURL string
	Logger  *slog.Logger
}

// BucketRecord is one network's figures for one closed bucket.
type BucketRecord struct {
	Network   string    `json:"network"`
	ASN       uint32    `json:"asn"`
	Org       string    `json:"org"`
	Start     time.Time `json:"start"`
	Completed int       `json:"completed"`
	StalledUp int       `json:"stalled_up"`
	StalledDn int       `json:"stalled_down"`
	Failed    int       `json:"failed"`
}

// OtherNetwork is the key of the networks folded together beyond MaxNetworks.
const OtherNetwork = "other"

// Monitor aggregates handshakes and alerts. It is safe for concurrent
// use: the pipeline feeds it while the metrics and the view read it.
type Monitor struct {
	cfg Config
	opt Options

	mu   sync.Mutex
	nets map[string]*network
	// order is nets sorted by key, rebuilt as each bucket closes: the
	// networks are evaluated, and their alerts emitted, in that order.
	order    []*network
	cur      int64 // current bucket index; -1 before the first handshake
	started  bool
	total    Counts
	byFamily [2]Counts // IPv4, IPv6
	folded   uint64    // handshakes folded into "other" for lack of room
	pruned   uint64    // networks forgotten to make room
	// unverified counts the handshakes whose SYN exchange the capture did
	// not see (flow.Handshake.Verified): never evidence, counted apart.
	unverified Counts
	other      Counts // handshakes of networks without their own series
	server     serverState
	featAll    featTally // every verified hello by feature and result (no network)
	history    []Alert   // every alert change, newest last (bounded)
}

const maxHistory = 1000

// New returns a monitor.
func New(cfg Config, opt Options) *Monitor {
	cfg.fill()
	if opt.Lookup == nil {
		opt.Lookup = func(a netip.Addr) asn.Result { return asn.Result{Addr: a, Prefix: fallbackPrefix(a)} }
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Monitor{cfg: cfg, opt: opt, nets: map[string]*network{}}
}

func fallbackPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p
}

// Config returns the configuration in force (defaults filled in).
func (m *Monitor) Config() Config { return m.cfg }

func (m *Monitor) index(t time.Time) int64 { return t.UnixNano() / int64(m.cfg.Bucket) }

func (m *Monitor) start(idx int64) time.Time { return time.Unix(0, idx*int64(m.cfg.Bucket)).UTC() }

// Observe counts one handshake. Its End timestamp places it in a bucket;
// a timestamp past the current bucket first closes (and evaluates) the
// buckets before it. A handshake older than the current bucket counts in
// the current one. Only a verified handshake (flow.Handshake.Verified:
// the capture saw its SYN exchange) is evidence for its network and the
// server-wide rate; an unverified one, which an off-path sender can forge
// from any address, is only counted apart (Snapshot.Unverified).
func (m *Monitor) Observe(h flow.Handshake) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := h.End
	if ts.IsZero() {
		ts = h.Start
	}
	m.advance(m.index(ts))
	if !h.Verified {
		// Anyone can send these from any address: they take no
		// network's slot and count in no rate.
		m.unverified[outcomeIndex(h.Outcome)]++
		return
	}
	n := m.networkFor(h.Client.Addr())
	kind := stallKind(&h)
	oi := outcomeIndex(h.Outcome)
	m.total[oi]++
	if h.Family == 6 {
		m.byFamily[1][oi]++
	} else {
		m.byFamily[0][oi]++
	}
	n.total[oi]++
	if m.exportedLocked(n) {
		n.exported[oi]++
	} else {
		m.other[oi]++
	}
	has, known := helloFeatures(&h)
	res := featResult(&h, kind)
	for _, t := range []*featTally{&n.featWin[0], &n.featLast, &n.featTotal, &m.featAll} {
		t.observe(has, known, res, h.ResetHopDiffers)
	}
	if m.exportedLocked(n) {
		n.featExp.observe(has, known, res, h.ResetHopDiffers)
	}
	n.totalEv.observe(&h, kind)
	n.recent[0].observe(&h, kind)
	n.lastSeen = m.cur
	t := n.bucket(m.cur)
	switch {
	case kind == stallUp:
		t.stallUp++
		n.totalStall[0]++
	case kind == stallDown:
		t.stallDown++
		n.totalStall[1]++
	case h.Outcome == diagnose.Completed:
		t.completed++
	case tlsAttempt(&h):
		t.failed++
	}
}

// Advance closes and evaluates every bucket that ended at or before now:
// the live pipeline calls it as its clock moves with no handshakes coming.
func (m *Monitor) Advance(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(m.index(now))
}

// Flush closes and evaluates the current bucket, at the end of a capture.
func (m *Monitor) Flush() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		m.advance(m.cur + 1)
	}
}

func (m *Monitor) advance(idx int64) {
	if !m.started {
		m.started, m.cur = true, idx
		m.server.since = idx
		return
	}
	if idx <= m.cur {
		return
	}
	// Close the current bucket, then the empty ones after it, at most
	// History of them: a longer gap leaves nothing in any ring to evaluate
	// (but the time without traffic still counts, for StaleAfter).
	m.closeBucket(m.cur)
	from := m.cur + 1
	if idx-from > int64(m.cfg.History) {
		from = idx - int64(m.cfg.History)
	}
	for b := from; b < idx; b++ {
		m.cur = b
		m.closeBucket(b)
	}
	m.cur = idx
}

func (m *Monitor) networkFor(addr netip.Addr) *network {
	r := m.opt.Lookup(addr)
	key := r.Group()
	if n := m.nets[key]; n != nil {
		return n
	}
	if len(m.nets) >= m.cfg.MaxNetworks && !m.makeRoom() {
		key = OtherNetwork
		if n := m.nets[key]; n != nil {
			m.folded++
			return n
		}
		m.folded++
		r = asn.Result{}
	}
	n := &network{key: key, asn: r.ASN, org: r.Org, ring: make([]tally, m.cfg.History), lastSeen: m.cur,
		since: m.cur, recentIdx: m.cur}
	for i := range n.ring {
		n.ring[i].index = -1
	}
	m.nets[key] = n
	return n
}

// exportedLocked reports whether n has its own metric series: one of the
// TopN networks by volume over the window, or alerting. The set is
// recomputed at each evaluation (see refreshExported).
func (m *Monitor) exportedLocked(n *network) bool { return n.exportedNow }

// refreshExported picks the networks with their own series.
func (m *Monitor) refreshExported() {
	type vol struct {
		n *network
		v int
	}
	vs := make([]vol, 0, len(m.nets))
	for _, n := range m.nets {
		n.exportedNow = false
		if n.key == OtherNetwork {
			continue
		}
		s := n.sum(m.cur-int64(m.cfg.Window)+1, m.cur)
		vs = append(vs, vol{n, int(s.completed + s.stallUp + s.stallDown + s.failed)})
	}
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].v != vs[j].v {
			return vs[i].v > vs[j].v
		}
		return vs[i].n.key < vs[j].n.key
	})
	for i, x := range vs {
		if (i < m.cfg.TopN && x.v > 0) || x.n.firing || x.n.featAlert != nil {
			x.n.exportedNow = true
		}
	}
}
