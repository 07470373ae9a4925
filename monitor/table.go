package monitor

import (
	"slices"
)

// The network table is bounded (Config.MaxNetworks). Only verified
// handshakes (see flow.Handshake.Verified) reach it, so a network's entry
// costs its sender a real TCP exchange from an address in it. When the
// table is full, a new network takes the place of the least useful ones
// rather than being folded into "other", which never alerts: otherwise a
// table filled once, by anyone, would silence every network first seen
// afterwards until the idle entries aged out of the history.

// evictShare is the part of a full table made free at once: the scan and
// the sort are paid once per that many new networks.
const evictShare = 16

// makeRoom forgets the least useful networks of a full table, at least
// one and at most a sixteenth of it, and reports whether it freed any. A
// firing network (stall or feature alert), and the "other" entry, are
// never forgotten. Least
// useful first: networks without a stall in the window and never alerted
// before those with (the evidence an alert is made of); then the fewest
// handshakes in the window (an idle network has none); then the longest
// unseen.
func (m *Monitor) makeRoom() bool {
	type cand struct {
		n       *network
		keep    bool
		volume  int
		seen    int64
		forever uint64
	}
	from := m.cur - int64(m.cfg.Window) + 1
	cs := make([]cand, 0, len(m.nets))
	for _, n := range m.nets {
		if n.key == OtherNetwork || n.firing || n.featAlert != nil {
			continue
		}
		w := n.sum(from, m.cur)
		cs = append(cs, cand{n: n, keep: w.stalls() > 0 || n.alerted || n.featLastAlert != nil, volume: w.attempts() + int(w.failed),
			seen: n.lastSeen, forever: n.total.Total()})
	}
	if len(cs) == 0 {
		return false
	}
	slices.SortFunc(cs, func(a, b cand) int {
		switch {
		case a.keep != b.keep:
			if a.keep {
				return 1
			}
			return -1
		case a.volume != b.volume:
			return a.volume - b.volume
		case a.seen != b.seen:
			if a.seen < b.seen {
				return -1
			}
			return 1
		case a.forever != b.forever:
			if a.forever < b.forever {
				return -1
			}
			return 1
		}
		return 0
	})
	k := min(len(cs), max(1, m.cfg.MaxNetworks/evictShare))
	for _, c := range cs[:k] {
		m.forget(c.n)
	}
	return true
}

// forget drops network n from the table: its handshakes stay in the
// totals, its buckets leave the others' figures.
func (m *Monitor) forget(n *network) {
	delete(m.nets, n.key)
	m.pruned++
}
