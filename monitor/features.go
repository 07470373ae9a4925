package monitor

import (
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/flow"
	"github.com/mtuscope/mtuscope/tlswire"
)

// What a ClientHello carried, as the monitor breaks each network's
// handshakes down: the things devices are reported to reject a hello for
// rather than for its size (issue 18).
const (
	featPQShare = iota
	featPQOffered
	featMLDSA
	featLength
	featSplit
	nFeatures
)

// featureInfo describes one feature: its name (the metrics' label and the
// alert's, diagnose's variant name where it has one), how an alert calls
// the hellos that carry it, and the verdict whose fixes apply.
type featureInfo struct {
	name    string
	what    string // "ClientHellos that carry ..."
	verdict diagnose.Verdict
	// fix is the alert summary's short form of the fixes (in full in its
	// diagnosis, diagnose's own texts).
	fix string
}

// FeatureSplit is the name of the split-hello feature (diagnose has a
// variant per way of splitting; the monitor sees only that it was).
const FeatureSplit = "split_segments"

var features = [nFeatures]featureInfo{
	featPQShare: {diagnose.VariantPQKeyShare, "the post-quantum key share X25519MLKEM768 (0x11EC)", diagnose.VerdictPQRejected,
		"let ClientHellos with the hybrid key share through the device on this network's path " +
			"(exempt the signature or inspection profile that resets them); client stopgaps: GODEBUG=tlsmlkem=0 (Go), " +
			"Groups = DEFAULT:-X25519MLKEM768 (OpenSSL 3.5+), the PostQuantumKeyAgreementEnabled policy set to false (Chrome and Edge up to 145)"},
	featPQOffered: {diagnose.VariantPQOffered, "a post-quantum group in supported_groups without its key share", diagnose.VerdictPQRejected,
		"let ClientHellos that offer the post-quantum group through the device on this network's path; " +
			"client stopgaps: GODEBUG=tlsmlkem=0 (Go), Groups = DEFAULT:-X25519MLKEM768 (OpenSSL 3.5+)"},
	featMLDSA: {diagnose.VariantMLDSA, "the ML-DSA signature algorithms 0x0904-0x0906", diagnose.VerdictMLDSARejected,
		"exempt the signature that matches the ML-DSA code points on the device on this network's path " +
			"(golang/go#81199), or upgrade it; no documented client switch turns them off"},
	featLength: {diagnose.VariantLengthWindow, "a length of 256-511 bytes (RFC 7685's window)", diagnose.VerdictLengthRejected,
		"update the device on this network's path that mishandles 256-511-byte ClientHellos; " +
			"clients that pad their hellos out of the window (RFC 7685) pass"},
	featSplit: {FeatureSplit, "their records split across TCP segments", diagnose.VerdictSplitIntolerant,
		"have the device on this network's path reassemble segments before it inspects a ClientHello, " +
			"or exempt this traffic; client stopgap: GODEBUG=tlsmlkem=0 (Go) makes the hello fit one segment"},
}

// FeatureNames returns the features' names in their fixed order.
func FeatureNames() []string {
	out := make([]string, nFeatures)
	for i, f := range features {
		out[i] = f.name
	}
	return out
}

// helloFeatures returns the features h's hello carried (has) and those
// whose presence or absence the capture shows (known): a hello of which
// only the first bytes arrived may hold a feature past them.
func helloFeatures(h *flow.Handshake) (has, known uint8) {
	if h.HelloBytes == 0 {
		return 0, 0
	}
	set := func(f int, present, sure bool) {
		if present {
			has |= 1 << f
		}
		if present || sure {
			known |= 1 << f
		}
	}
	read := h.HelloRead
	shares, groups := read&tlswire.ReadKeyShare != 0, read&tlswire.ReadGroups != 0
	set(featPQShare, h.PQKeyShare, shares)
	set(featPQOffered, h.PQOffered, h.PQKeyShare || shares && groups)
	set(featMLDSA, h.MLDSA, read&tlswire.ReadSigAlgs != 0)
	// The handshake length field: the record without its 5-byte header and
	// the message's 4-byte one.
	if n := h.HelloBytes - tlswire.RecordHeaderLen - 4; n > 0 {
		set(featLength, n >= 256 && n <= 511, true)
	}
	set(featSplit, h.HelloSplit, true)
	return has, known
}

// Results of a handshake for the feature breakdown.
const (
	featSkip = iota
	featCompleted
	featFailed
)

// featResult says how h counts in the feature breakdown: a TLS attempt
// whose hello was seen, completed or failed. A stall (a hello or flight
// lost on the way, with evidence) is the stall alert's, not a feature's:
// a device that refuses a hello for what it carries resets or answers
// with an alert, and one that drops it silently leaves nothing here. A
// failed hello counts only when it arrived whole, or when the reset that
// ended it came from the path (its TTL was not the client's: S13's device
// drops the hello's last segment and resets both ends): a client that
// stops in the middle of its hello and closes, resets or falls silent (a
// slow-hello flood, a scanner) refused nothing and proves nothing.
func featResult(h *flow.Handshake, kind int) int {
	switch {
	case !tlsAttempt(h) || h.HelloBytes == 0 || kind != notStall:
		return featSkip
	case h.Outcome == diagnose.Completed:
		return featCompleted
	case !h.HelloWhole && !h.ResetHopDiffers:
		return featSkip
	}
	return featFailed
}

// cell counts hellos: completed, failed, and of the failed those ended
// by a reset whose TTL was not the client's (flow.Handshake.ResetHopDiffers).
type cell [3]uint32

func (c cell) completed() int { return int(c[0]) }
func (c cell) failed() int    { return int(c[1]) }
func (c cell) total() int     { return int(c[0]) + int(c[1]) }
func (c cell) byPath() int    { return int(c[2]) }

// featTally counts, per feature, the hellos without it ([f][0]) and with
// it ([f][1]) by result; hellos for which the feature is unknown are in
// neither.
type featTally [nFeatures][2]cell

func (t *featTally) observe(has, known uint8, result int, byPath bool) {
	if result == featSkip {
		return
	}
	for f := range nFeatures {
		if known&(1<<f) == 0 {
			continue
		}
		with := 0
		if has&(1<<f) != 0 {
			with = 1
		}
		t[f][with][result-featCompleted]++
		if result == featFailed && byPath {
			t[f][with][2]++
		}
	}
}

func (t *featTally) add(o *featTally) {
	for f := range t {
		for w := range t[f] {
			for r := range t[f][w] {
				t[f][w][r] += o[f][w][r]
			}
		}
	}
}

func (c cell) minus(o cell) cell { return cell{c[0] - o[0], c[1] - o[1], c[2] - o[2]} }

func (c cell) plus(o cell) cell { return cell{c[0] + o[0], c[1] + o[1], c[2] + o[2]} }
