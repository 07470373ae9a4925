package monitor

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/tlswire"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// kind of hello a synthetic client sends.
type helloKind int

const (
	pqHello      helloKind = iota // Go 1.26 default: X25519MLKEM768, 1503 bytes, two segments
	classicHello                  // X25519 only: 271 bytes, one segment
	unknownHello                  // only its first bytes arrived, too few to tell; reset by the path
	curlHello                     // OpenSSL 3.0: 508 bytes (499 in the length field), no post-quantum share
	halfHello                     // a slow-hello client: the first 100 bytes of a 517-byte hello, then nothing
)

// hellos returns n verified handshakes from network prefix (a /24) with
// hellos of kind k that ended in outcome o, over the minute from start.
func hellos(prefix string, n int, k helloKind, o diagnose.Outcome, start time.Time) []flow.Handshake {
	all := tlswire.ReadKeyShare | tlswire.ReadGroups | tlswire.ReadSigAlgs
	var hs []flow.Handshake
	for i := range n {
		at := start.Add(time.Duration(i) * 50 * time.Second / time.Duration(max(n, 1)))
		h := flow.Handshake{
			Client: netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("%s.%d", prefix, 2+i%10)), uint16(40000+i)),
			Server: server, Family: 4, Start: at, End: at.Add(20 * time.Millisecond), Outcome: o, Verified: true,
			HelloBytes: 271, HelloSegments: 1, HelloRead: all, HelloWhole: true,
		}
		switch k {
		case pqHello:
			h.HelloBytes, h.HelloSegments, h.PQKeyShare, h.HelloSplit = 1503, 2, true, true
		case unknownHello:
			h.HelloBytes, h.HelloRead, h.HelloSplit, h.HelloWhole, h.ResetHopDiffers = 1503, 0, true, false, true
		case curlHello:
			h.HelloBytes = 508
		case halfHello:
			h.HelloBytes, h.HelloRead, h.HelloSplit, h.HelloWhole = 517, 0, true, false
		}
		if o == diagnose.Reset {
			h.Detail = "the client reset (RST) the connection"
		}
		hs = append(hs, h)
	}
	return hs
}

// feed observes the handshakes in time order and closes their minute.
func feed(m *Monitor, minute time.Time, groups ...[]flow.Handshake) {
	var all []flow.Handshake
	for _, g := range groups {
		all = append(all, g...)
	}
	slices.SortFunc(all, func(a, b flow.Handshake) int { return a.End.Compare(b.End) })
	for _, h := range all {
		m.Observe(h)
	}
	m.Advance(minute.Add(time.Minute))
}

// healthy is a network whose hellos, post-quantum and classic, complete.
func healthy(prefix string, minute time.Time) []flow.Handshake {
	return append(hellos(prefix, 20, pqHello, diagnose.Completed, minute), hellos(prefix, 10, classicHello, diagnose.Completed, minute)...)
}

func featureAlerts(r *recorder, state string) []Alert {
	var out []Alert
	for _, a := range r.alerts {
		if a.Kind == KindFeature && a.State == state {
			out = append(out, a)
		}
	}
	return out
}

// TestFeatureAlertPQ: one network behind a device that resets its
// post-quantum hellos while its classic ones complete, two networks whose
// post-quantum hellos complete: one feature alert, for that network,
// naming the key share and the fixes, within the minute; none for the
// others; it resolves when the device is gone.
func TestFeatureAlertPQ(t *testing.T) {
	m, rec := newMonitor(Config{})
	bad := func(minute time.Time) []flow.Handshake {
		resets := hellos("192.0.2", 12, pqHello, diagnose.Reset, minute)
		for i := range resets[:10] {
			resets[i].ResetHopDiffers = true // the device's resets; two clients reset on their own
		}
		return append(resets, hellos("192.0.2", 15, classicHello, diagnose.Completed, minute)...)
	}
	feed(m, t0, bad(t0), healthy("198.51.100", t0), healthy("203.0.113", t0))
	fired := featureAlerts(rec, Firing)
	if len(fired) != 1 || len(rec.alerts) != 1 {
		t.Fatalf("alerts %+v, want one feature alert", rec.alerts)
	}
	a := fired[0]
	st := a.Feature
	if a.Network != "192.0.2.0/24" || st == nil || st.Feature != diagnose.VariantPQKeyShare || a.Diagnosis.Verdict != diagnose.VerdictPQRejected {
		t.Fatalf("alert %+v, want 192.0.2.0/24, pq_keyshare, clienthello_pq_rejected", a)
	}
	if st.Failed != 12 || st.ResetByPath != 10 || st.Completed != 0 || st.WithoutCompleted != 15 || st.OthersCompleted != 40 || st.OthersNetworks != 2 {
		t.Errorf("figures %+v", st)
	}
	if !slices.Equal(st.Also, []string{FeatureSplit}) {
		t.Errorf("also %v, want the split (every post-quantum hello was split)", st.Also)
	}
	for _, w := range []string{"192.0.2.0/24", "X25519MLKEM768", "12 of 12 failed (10 reset by something on the path", "completed 15 of 15", "completed 40 of 40",
		"clienthello_pq_rejected", "GODEBUG=tlsmlkem=0", "PostQuantumKeyAgreementEnabled", "Groups = DEFAULT:-X25519MLKEM768"} {
		if !strings.Contains(a.Summary, w) {
			t.Errorf("summary lacks %q: %s", w, a.Summary)
		}
	}
	var codes []string
	for _, f := range a.Diagnosis.Fixes {
		codes = append(codes, f.Code)
	}
	for _, c := range []string{"device_allow_pq", "go_disable_mlkem", "openssl_groups_no_pq", "chrome_pq_policy"} {
		if !slices.Contains(codes, c) {
			t.Errorf("fixes %v lack %s", codes, c)
		}
	}
	if d := a.Diagnosis.Findings[0].Detail; !strings.Contains(d, "split") || !strings.Contains(d, "mtuscope probe") {
		t.Errorf("finding %q says nothing of the split or of probe", d)
	}
	e := m.Exported()
	if e.Features[featPQShare][1] != [2]uint64{40, 12} || e.Features[featPQShare][0] != [2]uint64{35, 0} {
		t.Errorf("exported pq figures %v", e.Features[featPQShare])
	}

	// Three more minutes of the device, then it is gone: two clean
	// minutes resolve the alert, and the failures it was made of fire
	// nothing else (every one was split too) in the minutes after.
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		feed(m, at, bad(at), healthy("198.51.100", at), healthy("203.0.113", at))
	}
	for i := 4; i <= 9; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		feed(m, at, healthy("192.0.2", at), healthy("198.51.100", at), healthy("203.0.113", at))
	}
	if r := featureAlerts(rec, Resolved); len(r) != 1 || r[0].ID != a.ID || r[0].Reason != "recovered" {
		t.Fatalf("resolutions %+v, want the alert recovered", r)
	}
	if len(rec.alerts) != 2 {
		t.Errorf("alert changes %d, want 2: %+v", len(rec.alerts), rec.alerts)
	}
}

// TestFeatureNoAlert holds the cases that must not alert.
func TestFeatureNoAlert(t *testing.T) {
	for _, c := range []struct {
		name string
		bad  func(time.Time) []flow.Handshake
		// others replaces the two healthy networks when set.
		others func(string, time.Time) []flow.Handshake
		// minutes fed (few samples: one; the same few minute after minute
		// add up to evidence, as they should)
		minutes int
	}{
		{"few failures", func(at time.Time) []flow.Handshake {
			return append(hellos("192.0.2", 4, pqHello, diagnose.Reset, at), hellos("192.0.2", 15, classicHello, diagnose.Completed, at)...)
		}, nil, 1},
		{"few hellos without the feature", func(at time.Time) []flow.Handshake {
			return append(hellos("192.0.2", 12, pqHello, diagnose.Reset, at), hellos("192.0.2", 3, classicHello, diagnose.Completed, at)...)
		}, nil, 1},
		{"clients that abort every hello", func(at time.Time) []flow.Handshake {
			return append(hellos("192.0.2", 12, pqHello, diagnose.Reset, at), hellos("192.0.2", 15, classicHello, diagnose.Reset, at)...)
		}, nil, 5},
		{"resets without a contrast in the network", func(at time.Time) []flow.Handshake {
			return hellos("192.0.2", 20, pqHello, diagnose.Reset, at)
		}, nil, 5},
		{"the feature fails everywhere", func(at time.Time) []flow.Handshake {
			return append(hellos("192.0.2", 12, pqHello, diagnose.Reset, at), hellos("192.0.2", 15, classicHello, diagnose.Completed, at)...)
		}, func(p string, at time.Time) []flow.Handshake {
			return append(hellos(p, 20, pqHello, diagnose.Reset, at), hellos(p, 10, classicHello, diagnose.Completed, at)...)
		}, 5},
		{"too few other networks' hellos with it", func(at time.Time) []flow.Handshake {
			return append(hellos("192.0.2", 12, pqHello, diagnose.Reset, at), hellos("192.0.2", 15, classicHello, diagnose.Completed, at)...)
		}, func(p string, at time.Time) []flow.Handshake {
			return append(hellos(p, 4, pqHello, diagnose.Completed, at), hellos(p, 20, classicHello, diagnose.Completed, at)...)
		}, 1},
		{"slow hellos: the first bytes of a hello, then silence or the client's own close", func(at time.Time) []flow.Handshake {
			// S12's half-sent 517-byte hellos beside curl's 508-byte ones
			// (both in the 256-511 window) and Go's post-quantum ones (not):
			// the half hellos were refused by nobody.
			hs := append(hellos("192.0.2", 10, halfHello, diagnose.Timeout, at), hellos("192.0.2", 10, halfHello, diagnose.Reset, at)...)
			hs = append(hs, hellos("192.0.2", 10, curlHello, diagnose.Completed, at)...)
			return append(hs, hellos("192.0.2", 20, pqHello, diagnose.Completed, at)...)
		}, func(p string, at time.Time) []flow.Handshake {
			return append(hellos(p, 20, curlHello, diagnose.Completed, at), hellos(p, 20, pqHello, diagnose.Completed, at)...)
		}, 5},
		{"hellos whose content the capture did not see", func(at time.Time) []flow.Handshake {
			// Unknown hellos fail; they count neither with the key share
			// nor without it (they are split: that feature is known).
			return append(hellos("192.0.2", 12, unknownHello, diagnose.Reset, at), hellos("192.0.2", 15, classicHello, diagnose.Completed, at)...)
		}, func(p string, at time.Time) []flow.Handshake {
			// Others' post-quantum hellos are not split: the split alone
			// has no contrast elsewhere.
			hs := hellos(p, 20, pqHello, diagnose.Completed, at)
			for i := range hs {
				hs[i].HelloSplit = false
			}
			return append(hs, hellos(p, 10, classicHello, diagnose.Completed, at)...)
		}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, rec := newMonitor(Config{})
			others := c.others
			if others == nil {
				others = healthy
			}
			for i := range c.minutes {
				at := t0.Add(time.Duration(i) * time.Minute)
				feed(m, at, c.bad(at), others("198.51.100", at), others("203.0.113", at))
			}
			if f := featureAlerts(rec, Firing); len(f) > 0 {
				t.Errorf("feature alert %s", f[0].Summary)
			}
		})
	}
}

// TestHelloFeatures checks which features a handshake's hello is known
// to carry or lack.
func TestHelloFeatures(t *testing.T) {
	all := tlswire.ReadKeyShare | tlswire.ReadGroups | tlswire.ReadSigAlgs
	bit := func(fs ...int) uint8 {
		var b uint8
		for _, f := range fs {
			b |= 1 << f
		}
		return b
	}
	for _, c := range []struct {
		name       string
		h          flow.Handshake
		has, known uint8
	}{
		{"no hello", flow.Handshake{}, 0, 0},
		{"classic, 271 bytes (262 in the length field)", flow.Handshake{HelloBytes: 271, HelloRead: all}, bit(featLength),
			bit(featPQShare, featPQOffered, featMLDSA, featLength, featSplit)},
		{"pq, split", flow.Handshake{HelloBytes: 1503, PQKeyShare: true, HelloSplit: true, HelloRead: all}, bit(featPQShare, featSplit),
			bit(featPQShare, featPQOffered, featMLDSA, featLength, featSplit)},
		{"offered without share, ML-DSA", flow.Handshake{HelloBytes: 600, PQOffered: true, MLDSA: true, HelloRead: all},
			bit(featPQOffered, featMLDSA), bit(featPQShare, featPQOffered, featMLDSA, featLength, featSplit)},
		{"pq share seen in a cut hello", flow.Handshake{HelloBytes: 1900, PQKeyShare: true, HelloSplit: true,
			HelloRead: tlswire.ReadGroups}, bit(featPQShare, featSplit), bit(featPQShare, featPQOffered, featLength, featSplit)},
		{"nothing read of a cut hello", flow.Handshake{HelloBytes: 1900, HelloSplit: true}, bit(featSplit), bit(featLength, featSplit)},
	} {
		has, known := helloFeatures(&c.h)
		if has != c.has || known != c.known {
			t.Errorf("%s: has %05b known %05b, want %05b %05b", c.name, has, known, c.has, c.known)
		}
	}
}

// TestFeatureMetrics: the breakdown's series are bounded: the server-wide
// one has no network label and 5 x 2 x 2 series; the per-network one only
// the networks with their own series (top N, here 1, and the alerting).
func TestFeatureMetrics(t *testing.T) {
	m, _ := newMonitor(Config{TopN: 1})
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		bad := append(hellos("192.0.2", 12, pqHello, diagnose.Reset, at), hellos("192.0.2", 15, classicHello, diagnose.Completed, at)...)
		feed(m, at, bad, healthy("198.51.100", at), healthy("203.0.113", at), healthy("100.64.0", at))
	}
	reg := NewRegistry(m, nil, nil, nil)
	probs, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	nets := map[string]bool{}
	firing := ""
	for _, mf := range mfs {
		name := mf.GetName()
		for _, x := range mf.GetMetric() {
			series[name]++
			labels := map[string]string{}
			for _, l := range x.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch name {
			case "mtuscope_hello_feature_handshakes_total":
				if _, ok := labels["network"]; ok {
					t.Errorf("network label on %s", name)
				}
				if labels["feature"] == diagnose.VariantPQKeyShare && labels["hello"] == "with" && labels["result"] == "failed" &&
					x.GetCounter().GetValue() != 36 {
					t.Errorf("pq hellos failed: %v, want 36", x.GetCounter().GetValue())
				}
			case "mtuscope_network_hello_feature_handshakes_total":
				nets[labels["network"]] = true
			case "mtuscope_network_feature_alert_firing":
				firing = labels["network"] + " " + labels["feature"]
			}
		}
	}
	if series["mtuscope_hello_feature_handshakes_total"] != 20 {
		t.Errorf("%d server-wide feature series, want 20", series["mtuscope_hello_feature_handshakes_total"])
	}
	if len(nets) != 2 || !nets["192.0.2.0/24"] || series["mtuscope_network_hello_feature_handshakes_total"] != 20 {
		t.Errorf("per-network feature series for %v (%d), want the top one and the alerting one, 10 each", nets,
			series["mtuscope_network_hello_feature_handshakes_total"])
	}
	if firing != "192.0.2.0/24 pq_keyshare" {
		t.Errorf("feature alert series %q", firing)
	}
}

// TestFeatureTwoNetworks: two networks behind devices that reset their
// post-quantum hellos, two healthy ones: both alert within the minute,
// each against the healthy networks alone (one failing network must not
// hide another by dragging the others' rate down).
func TestFeatureTwoNetworks(t *testing.T) {
	m, rec := newMonitor(Config{})
	bad := func(p string) []flow.Handshake {
		return append(hellos(p, 12, pqHello, diagnose.Reset, t0), hellos(p, 15, classicHello, diagnose.Completed, t0)...)
	}
	feed(m, t0, bad("192.0.2"), bad("100.64.0"), healthy("198.51.100", t0), healthy("203.0.113", t0))
	var got []string
	for _, a := range featureAlerts(rec, Firing) {
		got = append(got, a.Network)
		if a.Feature.OthersCompleted != 40 || a.Feature.OthersFailed != 0 || a.Feature.OthersNetworks != 2 {
			t.Errorf("%s: others %+v, want the two healthy networks' 40 of 40", a.Network, a.Feature)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"100.64.0.0/24", "192.0.2.0/24"}) {
		t.Errorf("feature alerts for %v, want both failing networks", got)
	}
}

// TestFeatureAlertmanager: a feature alert reaches Alertmanager under its
// own alertname with the feature as a label, the verdict and the fixes as
// annotations.
func TestFeatureAlertmanager(t *testing.T) {
	m, rec := newMonitor(Config{})
	bad := append(hellos("192.0.2", 12, pqHello, diagnose.Reset, t0), hellos("192.0.2", 15, classicHello, diagnose.Completed, t0)...)
	feed(m, t0, bad, healthy("198.51.100", t0), healthy("203.0.113", t0))
	a := featureAlerts(rec, Firing)
	if len(a) != 1 {
		t.Fatalf("alerts %+v", rec.alerts)
	}
	l := AlertmanagerLabels(a[0])
	if l["alertname"] != AlertNameFeature || l["feature"] != diagnose.VariantPQKeyShare || l["network"] != "192.0.2.0/24" {
		t.Errorf("labels %v", l)
	}
	body, err := encodeAlertmanager(a)
	if err != nil {
		t.Fatal(err)
	}
	var got []struct{ Annotations map[string]string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	ann := got[0].Annotations
	if ann["verdict"] != string(diagnose.VerdictPQRejected) || !strings.Contains(ann["fix"], "GODEBUG=tlsmlkem=0") ||
		!strings.Contains(ann["description"], "12 of 12") {
		t.Errorf("annotations %v", ann)
	}
}
