package diagnose

import (
	"fmt"
	"slices"
	"strings"
)

// Variant names: ClientHellos that differ from the one they are compared
// with (VariantControl) in one thing each, all at a size the path carries.
const (
	// VariantReference is the classical hello every other variant is
	// compared with: x25519 and secp256r1 key shares, SNI, 600 bytes, one
	// record in one segment.
	VariantReference = "reference"
	// VariantNoSNI is the reference without the server name.
	VariantNoSNI = "no_sni"
	// VariantMLDSA adds the ML-DSA signature algorithms 0x0904-0x0906.
	VariantMLDSA = "mldsa_sigalgs"
	// VariantPQOffered lists X25519MLKEM768 (0x11EC) in supported_groups
	// without its key share: a server that wants it answers with a
	// HelloRetryRequest, and the second hello carries the share.
	VariantPQOffered = "pq_group_without_share"
	// VariantLengthWindow is the reference at 400 bytes, inside the
	// 256-511-byte window some devices mishandle (RFC 7685).
	VariantLengthWindow = "length_256_511"
	// VariantTwoRecords carries the reference's hello in two TLS records
	// sent in one segment.
	VariantTwoRecords = "two_records"
	// VariantTwoSegments sends the reference's record in two TCP segments.
	VariantTwoSegments = "two_segments"
	// VariantPausedSplit sends it in two segments with a pause between.
	VariantPausedSplit = "two_segments_paused"
	// VariantClassicLarge is a classical hello padded to the size of
	// VariantPQKeyShare, sent the same way (split where that one is).
	VariantClassicLarge = "classic_large"
	// VariantPQKeyShare carries the X25519MLKEM768 key share, as Go 1.24+,
	// OpenSSL 3.5 and today's browsers send it.
	VariantPQKeyShare = "pq_keyshare"
)

// VariantControl returns the variant v is compared with: the hello that
// differs from it in the one thing v changes ("" for the reference).
func VariantControl(v string) string {
	switch v {
	case VariantReference:
		return ""
	case VariantPQKeyShare:
		return VariantClassicLarge
	}
	return VariantReference
}

// Who reset a connection, when the evidence says.
const (
	ResetByPath   = "path"   // the server never acknowledged the whole hello, or the reset came sooner than it could have
	ResetByServer = "server" // the server acknowledged the hello first (it, or a device behind it, reset)
)

// VariantTest is one attempt of one ClientHello variant.
type VariantTest struct {
	Name    string `json:"name"`
	Attempt int    `json:"attempt"`
	// HelloBytes is the record's size (both records' for VariantTwoRecords);
	// Records the TLS records and Segments the TCP segments it went in;
	// PauseMS the wait between the segments; PacketSize the largest IP
	// packet it needed.
	HelloBytes int     `json:"hello_bytes"`
	Records    int     `json:"records"`
	Segments   int     `json:"segments"`
	PauseMS    int     `json:"pause_ms,omitempty"`
	PacketSize int     `json:"packet_size"`
	Outcome    Outcome `json:"outcome"`
	Detail     string  `json:"detail,omitempty"`
	// ResetBy is ResetByPath or ResetByServer when a reset's timing or
	// what was acknowledged before it says so; empty otherwise.
	ResetBy string `json:"reset_by,omitempty"`
	// Alert names the TLS alert that ended the attempt.
	Alert string `json:"alert,omitempty"`
	// RetryGroup is the group a HelloRetryRequest asked a share for (the
	// attempt then answered it on the same connection).
	RetryGroup string `json:"retry_group,omitempty"`
}

// variantState sums up the attempts of one variant.
type variantState struct {
	tries, passes int
	bytes         int // the hello's size in its first attempt
	failures      []VariantTest
	// passedIn and failedIn are the attempts (rounds: every variant of a
	// round runs at the same time) that completed and that did not.
	passedIn, failedIn map[int]bool
}

// passed: every attempt completed; failed: at least two attempts, none
// completed; mixed: some of each, which proves nothing.
func (s variantState) passed() bool { return s.tries > 0 && s.passes == s.tries }
func (s variantState) failed() bool { return s.tries >= 2 && s.passes == 0 }
func (s variantState) mixed() bool  { return s.passes > 0 && s.passes < s.tries }

// against reports whether s failed every attempt, and did so in at least
// two rounds in which control completed: the same load, the same path,
// one change. A busy computer fails attempts at random; it does not fail
// one hello round after round while the hello beside it completes.
func (s variantState) against(control variantState) bool {
	return s.failed() && pairs(s, control) >= 2
}

// pairs counts the rounds in which s failed and control completed.
func pairs(s, control variantState) int {
	n := 0
	for a := range s.failedIn {
		if control.passedIn[a] {
			n++
		}
	}
	return n
}

func variantStates(vs []VariantTest) map[string]variantState {
	out := map[string]variantState{}
	for _, v := range vs {
		s := out[v.Name]
		if s.passedIn == nil {
			s.passedIn, s.failedIn = map[int]bool{}, map[int]bool{}
		}
		if s.tries == 0 {
			s.bytes = v.HelloBytes
		}
		s.tries++
		if v.Outcome == Completed {
			s.passes++
			s.passedIn[v.Attempt] = true
		} else {
			s.failures = append(s.failures, v)
			s.failedIn[v.Attempt] = true
		}
		out[v.Name] = s
	}
	return out
}

// splitShown reports whether the variants show that the path cannot read
// a ClientHello split across TCP segments: the same hello failed in two
// segments and completed in one. Its packets are small, so no size
// explains it.
func splitShown(ev Evidence) bool {
	st := variantStates(ev.Variants)
	return st[VariantTwoSegments].against(st[VariantReference])
}

// Finding codes of the variants beyond their verdicts.
const (
	CodeVariantsInconclusive = "variants_inconclusive"
	CodeVariantsUnsettled    = "variants_unsettled"
	CodeVariantsUndecided    = "variants_undecided"
	CodeSNIRequired          = "hello_without_sni_refused"
	CodePQSizeNotContent     = "pq_hello_fails_by_size"
)

// Names that findings cite, kept in their evidence too.
const (
	pqGroupName = "X25519MLKEM768 (0x11EC)"
	mldsaCodes  = "0x0904-0x0906"
	mldsaReport = "golang/go#81199, Go 1.27"
	lengthRange = "256-511 bytes, RFC 7685"
)

// variantFindings reads the variants and returns the causes of content
// they prove, most specific first; each gets its finding. Nothing is named
// unless its variant failed every attempt (at least two) while the hello
// it differs from completed every attempt.
//
// sizesWorked says some handshake of the size tests completed: when none
// did, a reference that never completed is no news (the finding that no
// handshake completed says more) and gets no finding of its own.
func (d *Diagnosis) variantFindings(ev Evidence, sizesWorked bool) []Verdict {
	if len(ev.Variants) == 0 {
		return nil
	}
	st := variantStates(ev.Variants)
	ref := st[VariantReference]
	if ref.passes == 0 {
		if ref.against(st[VariantNoSNI]) {
			d.add(string(VerdictSNIRejected), fmt.Sprintf("ClientHellos naming %s fail (%s) while the same hello without a server name "+
				"completes: something on the path (or the server) refuses connections by the name they ask for.",
				"the server", outcomes(ref.failures)), map[string]any{"reference": outcomes(ref.failures)})
			return []Verdict{VerdictSNIRejected}
		}
		if !sizesWorked {
			return nil
		}
		why := "it was not tried"
		switch {
		case ref.tries > 0:
			why = fmt.Sprintf("none of %d attempts completed: %s", ref.tries, outcomes(ref.failures))
		}
		d.add(CodeVariantsInconclusive, "The ClientHello variants decide nothing: the reference hello they are compared with never "+
			"completed ("+why+"), so what the path does with a hello's content is unknown; a run when the path or "+
			"this computer is less busy would decide.", map[string]any{"reference_tries": ref.tries})
		d.undecided = true
		return nil
	}
	var causes []Verdict
	cause := func(v Verdict) {
		if !slices.Contains(causes, v) {
			causes = append(causes, v)
		}
	}
	var unsettled []string
	for _, name := range []string{VariantNoSNI, VariantMLDSA, VariantPQOffered, VariantLengthWindow, VariantTwoRecords,
		VariantTwoSegments, VariantPausedSplit, VariantClassicLarge, VariantPQKeyShare} {
		if s, ok := st[name]; ok && s.mixed() {
			unsettled = append(unsettled, fmt.Sprintf("%s (%d of %d completed)", name, s.passes, s.tries))
		}
	}

	pq, large, offered, two := st[VariantPQKeyShare], st[VariantClassicLarge], st[VariantPQOffered], st[VariantTwoSegments]
	switch {
	case pq.against(large):
		evd := map[string]any{"pq_keyshare": outcomes(pq.failures), "hello_bytes": pq.failures[0].HelloBytes, "group": pqGroupName}
		text := fmt.Sprintf("ClientHellos carrying the post-quantum key share X25519MLKEM768 (0x11EC, %d bytes) fail (%s) while a classical "+
			"hello of the same size, sent the same way, completes: %s rejects the key share, not the size.",
			pq.failures[0].HelloBytes, outcomes(pq.failures), rejecter(pq.failures))
		switch {
		case offered.passed():
			text += " Offering the group without its key share (supported_groups only) completes."
			evd["group_without_share"] = "completed"
		case offered.against(ref):
			text += " Offering the group without its key share fails too (" + outcomes(offered.failures) + ")."
			evd["group_without_share"] = outcomes(offered.failures)
		}
		d.add(string(VerdictPQRejected), text, evd)
		cause(VerdictPQRejected)
	case pq.failed() && large.failed() && !large.mixed():
		d.add(CodePQSizeNotContent, fmt.Sprintf("ClientHellos with the post-quantum key share fail, but so does a classical hello "+
			"of the same size sent the same way (%s): the hello's size or its split across segments explains the failure, and "+
			"whether the key share is refused as well cannot be told from it.",
			outcomes(large.failures)), nil)
	}
	if offered.against(ref) && !slices.Contains(causes, VerdictPQRejected) {
		d.add(string(VerdictPQRejected), fmt.Sprintf("A ClientHello that lists X25519MLKEM768 (0x11EC) in supported_groups, without its "+
			"key share, fails (%s) while the same hello without it completes: %s rejects the post-quantum group even in a "+
			"hello without its key share%s.",
			outcomes(offered.failures), rejecter(offered.failures), retried(offered.failures)),
			map[string]any{"group_without_share": outcomes(offered.failures), "group": pqGroupName})
		cause(VerdictPQRejected)
	}
	if s := st[VariantMLDSA]; s.against(ref) {
		d.add(string(VerdictMLDSARejected), fmt.Sprintf("ClientHellos offering the ML-DSA signature algorithms 0x0904-0x0906 fail (%s) "+
			"while the same hello without them completes: %s rejects these code points (as reported in "+
			"golang/go#81199 for Go 1.27).", outcomes(s.failures), rejecter(s.failures)), map[string]any{"mldsa_sigalgs": outcomes(s.failures),
			"signature_algorithms": mldsaCodes, "reported": mldsaReport})
		cause(VerdictMLDSARejected)
	}
	if s := st[VariantLengthWindow]; s.against(ref) {
		d.add(string(VerdictLengthRejected), fmt.Sprintf("A %d-byte ClientHello fails (%s) while the same hello at %d bytes completes: "+
			"something on the path mishandles hellos of 256-511 bytes (the reason RFC 7685's padding extension exists).",
			s.failures[0].HelloBytes, outcomes(s.failures), ref.bytes),
			map[string]any{"hello_bytes": s.failures[0].HelloBytes, "reference_bytes": ref.bytes, "window": lengthRange})
		cause(VerdictLengthRejected)
	}
	if split := d.splitVariants(st); split {
		cause(VerdictSplitIntolerant)
	}
	if s := st[VariantNoSNI]; s.against(ref) {
		d.add(CodeSNIRequired, fmt.Sprintf("A ClientHello without a server name fails (%s) while the same hello naming %s completes: "+
			"the server or the path requires SNI; clients that connect by address fail this way.", outcomes(s.failures), "the server"), nil)
	}
	// A variant that failed every attempt without the pairing a cause
	// needs (its control failed beside it in a round, as a busy computer
	// makes happen) is neither a cause nor nothing: the verdict cannot be ok.
	var undecided []string
	for _, name := range []string{VariantNoSNI, VariantMLDSA, VariantPQOffered, VariantLengthWindow, VariantTwoRecords,
		VariantTwoSegments, VariantPausedSplit, VariantPQKeyShare} {
		s, c := st[name], st[VariantControl(name)]
		if s.tries == 0 || s.passes > 0 || c.passes == 0 || s.against(c) || name == VariantPQKeyShare && large.failed() ||
			name == VariantPausedSplit && !two.passed() || name == VariantPQOffered && slices.Contains(causes, VerdictPQRejected) {
			continue
		}
		undecided = append(undecided, fmt.Sprintf("%s (failed %d of %d; %s completed beside it in %d of those rounds)",
			name, s.tries, s.tries, VariantControl(name), pairs(s, c)))
	}
	if len(undecided) > 0 {
		d.add(CodeVariantsUndecided, "Some ClientHello variants failed every attempt, but the hello each differs from did not complete "+
			"beside it in two rounds, which a cause needs (a busy computer or server fails attempts at random): "+
			strings.Join(undecided, ", ")+". A run at a quieter time would decide.", map[string]any{"variants": strings.Join(undecided, ", ")})
		d.undecided = true
	}
	if len(unsettled) > 0 {
		d.add(CodeVariantsUnsettled, "Some ClientHello variants completed in one attempt and failed in another, which proves nothing: "+
			strings.Join(unsettled, ", ")+".", map[string]any{"variants": strings.Join(unsettled, ", ")})
	}
	return causes
}

// splitVariants adds what the split variants show (to the sweep's finding
// when it made one) and reports whether they prove split intolerance.
func (d *Diagnosis) splitVariants(st map[string]variantState) bool {
	var parts []string
	ref, two, paused, records := st[VariantReference], st[VariantTwoSegments], st[VariantPausedSplit], st[VariantTwoRecords]
	evd := map[string]any{}
	if two.against(ref) {
		parts = append(parts, fmt.Sprintf("the %d-byte hello sent in two TCP segments fails (%s) while in one it completes",
			two.bytes, outcomes(two.failures)))
		evd["two_segments"], evd["hello_bytes"] = outcomes(two.failures), two.bytes
	}
	if paused.against(two) && two.passed() {
		parts = append(parts, fmt.Sprintf("two segments with a pause of %d ms between them fail (%s) while without the pause they complete: "+
			"the device gives up waiting for the rest of the hello", paused.failures[0].PauseMS, outcomes(paused.failures)))
		evd["two_segments_paused"], evd["pause_ms"] = outcomes(paused.failures), paused.failures[0].PauseMS
	}
	if records.against(ref) {
		parts = append(parts, fmt.Sprintf("the same hello in two TLS records in one segment fails (%s): something reads only the first record",
			outcomes(records.failures)))
		evd["two_records"] = outcomes(records.failures)
	}
	if len(parts) == 0 {
		return false
	}
	text := "ClientHello variants: " + strings.Join(parts, "; ") + ". Every packet was small: the split, not the size, is refused."
	for i := range d.Findings {
		if d.Findings[i].Code == string(VerdictSplitIntolerant) {
			d.Findings[i].Detail += " " + text
			if d.Findings[i].Evidence == nil {
				d.Findings[i].Evidence = map[string]any{}
			}
			for k, v := range evd {
				d.Findings[i].Evidence[k] = v
			}
			return true
		}
	}
	d.add(string(VerdictSplitIntolerant), text+" Post-quantum hellos (about 1.5-1.8 KB) are always split and fail here.", evd)
	return true
}

// outcomes words the failed attempts of a variant: "reset by the path,
// reset by the path".
func outcomes(fs []VariantTest) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, outcomeText(f))
	}
	return strings.Join(slices.Compact(parts), "; ")
}

func outcomeText(f VariantTest) string {
	switch {
	case f.Outcome == Reset && f.ResetBy == ResetByPath:
		return "reset by something on the path before the server had the hello"
	case f.Outcome == Reset && f.ResetBy == ResetByServer:
		return "reset after the server acknowledged the hello"
	case f.Outcome == Reset:
		return "reset"
	case f.Outcome == Alert && f.Alert != "":
		return "TLS alert " + f.Alert
	case f.Outcome == Timeout || f.Outcome == StalledClientHello || f.Outcome == StalledServerFlight:
		return "no answer before the timeout (" + string(f.Outcome) + ")"
	}
	if f.Detail != "" {
		return string(f.Outcome) + ": " + f.Detail
	}
	return string(f.Outcome)
}

// rejecter names what refused a variant, as far as its failures tell: a
// reset before the server had the hello, or silence, is the path's; a
// TLS alert is the server's (or a device's answering in its name).
func rejecter(fs []VariantTest) string {
	path, alert := false, true
	for _, f := range fs {
		path = path || f.ResetBy == ResetByPath || f.Outcome != Reset && f.Outcome != Alert
		alert = alert && f.Outcome == Alert
	}
	switch {
	case path:
		return "something on the path"
	case alert:
		return "the server (or a TLS-inspecting device answering in its name)"
	}
	return "something on the path or the server"
}

func retried(fs []VariantTest) string {
	for _, f := range fs {
		if f.RetryGroup != "" {
			return fmt.Sprintf(" (the server asked for a %s key share with a HelloRetryRequest; the hello that carried it failed)", f.RetryGroup)
		}
	}
	return ""
}
