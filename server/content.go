package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mtuscope/mtuscope/api"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/tlswire"
)

// What the page can say of a ClientHello's content. A browser's hello
// cannot be varied, so the page cannot name the one feature a device
// rejects, as probe's variants do; but when no size completes, the server
// sees how each rung's hello ended (reset by an RST it did not send, or
// never whole although full-size packets of it arrived) and what the hello
// carried. That rules packet size out and names the candidates.

// Finding codes of the page's reading of the hello.
const (
	// CodeHelloResetByPath: every rung's handshake was reset, by neither
	// end, while packets of every size crossed.
	CodeHelloResetByPath = "clienthello_reset_by_path"
	// CodeHelloNeverWhole: every rung's hello stopped arriving after a
	// full-size packet of it had, with no reset.
	CodeHelloNeverWhole = "clienthello_never_whole"
	// CodeHelloNeverArrived: at every size, nothing of the hello reached
	// the server (a device that drops it whole, or a busy browser).
	CodeHelloNeverArrived = "clienthello_never_arrived"
	// CodeHelloUndecided: the rungs failed in ways that do not agree, or a
	// reset that the browser may have sent.
	CodeHelloUndecided = "clienthello_content_undecided"
)

// helloContent is what a family's failed rungs show of its hellos.
type helloContent struct {
	reset, resetUnsure, stalled []int // IP packet sizes of the rungs read each way
	lost                        []int // sizes whose hello's first packet was lost (too large for the path)
	nothing                     []int // sizes at which nothing of the hello arrived
	other                       int   // rungs that failed some other way
	full                        []int // sizes at which a full-size packet of the hello arrived
	tested                      []int // sizes the page tested
	downPass                    int   // the largest size the server's packets were seen to reach the client at
	downLost, downUnmeasured    []int // tested sizes whose server packets were lost, or said nothing
	helloBytes, segments        int   // the largest hello, and the segments it needed at the largest rung
	resetMs                     int64 // the latest reset after the connection opened
	browserMs                   int   // the longest the browser's failed request took, at the reset sizes
	features                    tlswire.HelloFeatures
}

// readHelloContent reads a family's rungs; nil when a rung's handshake
// completed (size is the question then) or none says anything.
func readHelloContent(fam int, rungs []RungResult) *helloContent {
	hdr := diagnose.IPHeader(fam)
	c := &helloContent{}
	for _, r := range rungs {
		if r.Browser.Hello == "" {
			continue // not a rung the page tested (the refinement's exact-size segments)
		}
		if r.Test.Outcome == diagnose.Completed {
			return nil
		}
		if r.Browser.Hello != api.StepSkipped {
			c.tested = append(c.tested, r.Test.UpSize)
			switch r.Test.Down {
			case diagnose.Passed:
				c.downPass = max(c.downPass, r.Test.DownSize)
			case diagnose.Failed:
				c.downLost = append(c.downLost, r.Test.DownSize)
			default:
				c.downUnmeasured = append(c.downUnmeasured, r.Test.DownSize)
			}
		}
		if !r.hasBest || r.Uncertain != "" {
			continue // the join kept no connection of the page's as the rung's
		}
		best := r.Server[0]
		size := r.Test.UpSize // the rung's, or less when the client offered less
		seg := r.Test.UpSize - hdr - best.Info.OptionBytes()
		if best.HelloGot == 0 && best.HelloHash == "" && nothingArrived(best) {
			// Nothing of the hello arrived, in order or beyond a gap: a busy
			// browser that had not sent it, or a hello dropped whole.
			if best.Kind == kindRung && r.Browser.Hello == api.StepFail {
				c.nothing = append(c.nothing, size)
			}
			continue
		}
		if best.HelloFeatures != nil {
			c.features = mergeFeatures(c.features, *best.HelloFeatures)
		}
		c.helloBytes = max(c.helloBytes, best.HelloExpected)
		if seg > 0 && best.HelloExpected > 0 {
			c.segments = max(c.segments, (best.HelloExpected+tlswire.RecordHeaderLen+seg-1)/seg)
		}
		if fullSegmentArrived(best, seg) {
			c.full = append(c.full, size)
		}
		switch {
		case best.Reset && !best.HandshakeDone && browserSawReset(r.Browser):
			c.reset = append(c.reset, size)
			c.resetMs = max(c.resetMs, best.ResetMs)
			c.browserMs = max(c.browserMs, r.Browser.Millis)
		case best.Reset && !best.HandshakeDone:
			c.resetUnsure = append(c.resetUnsure, size)
		case r.Test.Outcome == diagnose.StalledClientHello && fullSegmentArrived(best, seg):
			c.stalled = append(c.stalled, size)
		case r.Test.Up == diagnose.Failed:
			c.lost = append(c.lost, size) // its first, full-size packet was lost: size
		default:
			c.other++
		}
	}
	if c.said() == 0 && len(c.nothing) == 0 {
		return nil
	}
	c.downUnmeasured = slices.DeleteFunc(c.downUnmeasured, func(size int) bool { return size <= c.downPass })
	return c
}

// said counts the rungs whose hellos say something.
func (c *helloContent) said() int {
	return len(c.reset) + len(c.resetUnsure) + len(c.stalled) + len(c.lost) + c.other
}

// lostAbove says the rungs lost by size are all larger than every size in
// sizes: a size limit above the sizes that crossed (S17: a black hole and
// a device that resets the hellos that cross it).
func (c *helloContent) lostAbove(sizes []int) bool {
	return len(c.lost) == 0 || len(sizes) > 0 && slices.Min(c.lost) > slices.Max(sizes)
}

// browserSawReset says the page's request on the rung failed with a
// network error of its own (Chromium's ERR_CONNECTION_RESET reaches the
// page as a TypeError), not because the page gave up (AbortError) or the
// server answered with an HTTP error.
func browserSawReset(br api.BrowserRung) bool {
	return br.Hello == api.StepFail && br.Error != "" && br.Error != "AbortError" && !strings.HasPrefix(br.Error, "HTTP ")
}

// mergeFeatures combines what the hellos of one browser showed (each
// connection's hello arrived in part, and browsers shuffle extensions).
func mergeFeatures(a, b tlswire.HelloFeatures) tlswire.HelloFeatures {
	a.Size, a.Read = max(a.Size, b.Size), max(a.Read, b.Read)
	a.PQKeyShare = a.PQKeyShare.Merge(b.PQKeyShare)
	if a.PQGroup == 0 {
		a.PQGroup = b.PQGroup
	}
	a.PQOffered = a.PQOffered.Merge(b.PQOffered)
	a.MLDSA = a.MLDSA.Merge(b.MLDSA)
	a.SNI = a.SNI.Merge(b.SNI)
	if a.ServerName == "" {
		a.ServerName = b.ServerName
	}
	return a
}

// apply adds to a family's diagnosis what the hellos show, when they
// show something: a finding that names how the hellos ended, what they
// carried and what would tell the candidates apart, first (the report's
// summary), and the fixes of the candidate causes per audience.
func (c *helloContent) apply(d *diagnose.Diagnosis) {
	if c == nil || d.Verdict != diagnose.VerdictTLSFailed && d.Verdict != diagnose.VerdictInconclusive {
		return
	}
	for _, f := range d.Findings {
		if f.Code == diagnose.CodeTooSlow {
			return // the browser was too slow to measure: nothing of the path, nor of its hello
		}
	}
	carried := c.carried()
	decide := "Which of these the device rejects cannot be told from a browser, whose ClientHello cannot be changed: " +
		"mtuscope probe, run from this network against this server, sends hellos that differ in one thing each and names it."
	var f diagnose.Finding
	var causes []diagnose.Verdict
	switch {
	case len(c.reset) >= 2 && len(c.reset)+len(c.lost) == c.said() && c.lostAbove(c.reset):
		f = diagnose.Finding{Code: CodeHelloResetByPath, Detail: fmt.Sprintf("Every handshake was reset while the ClientHello "+
			"was arriving, %s: the server saw each connection reset by an RST it did not send, and the "+
			"browser's request failed with a network error (within %d ms, not at its timeout), so neither end sent it: a device "+
			"on the path (a firewall or TLS inspection) resets connections because of what the hello carries, not because of "+
			"its size%s. Your browser's hello carried %s. %s",
			c.atSizes(c.reset), c.browserMs, c.notSize(c.reset), carried, decide) + c.sizeLimit()}
		causes = c.candidates(false)
		c.setPathMTU(d)
		if d.Verdict == diagnose.VerdictInconclusive || d.Verdict == diagnose.VerdictTLSFailed {
			d.Verdict, d.Direction = diagnose.VerdictTLSFailed, diagnose.Upstream
		}
	case len(c.stalled) >= 2 && len(c.stalled)+len(c.lost) == c.said() && c.lostAbove(c.stalled):
		f = diagnose.Finding{Code: CodeHelloNeverWhole, Detail: fmt.Sprintf("The ClientHello never arrived whole, %s, "+
			"and nothing reset the connections: the first, full-size packet of each hello reached the server and "+
			"the rest never did. Packet size does not explain it%s: something on the path drops a hello split across TCP "+
			"segments (it does not reassemble them) or drops it for what it carries. Your browser's hello carried %s. %s",
			c.atSizes(c.stalled), c.notSize(c.stalled), carried, decide) + c.sizeLimit()}
		causes = c.candidates(true)
		c.setPathMTU(d)
		d.Direction = diagnose.Upstream
	case c.said() == 0 && len(c.nothing) >= 2:
		f = diagnose.Finding{Code: CodeHelloNeverArrived, Detail: fmt.Sprintf("No part of the ClientHello reached the server, %s, "+
			"though every connection opened and the server's packets reached you: either something on the path drops the "+
			"hello whole (a device that cannot read a hello split across TCP segments drops its first one; a filter), or this "+
			"computer was too busy to send it before the page gave up. The server cannot tell these apart, so this says "+
			"nothing certain about the path: checking again with fewer programs running, or mtuscope probe run from this "+
			"network against this server, would decide.", c.atSizes(c.nothing))}
	case len(c.reset)+len(c.resetUnsure)+len(c.stalled) == 0:
		return // nothing points at the hello's content: diagnose's findings say it
	default:
		f = diagnose.Finding{Code: CodeHelloUndecided, Detail: fmt.Sprintf("No handshake completed, but the sizes do not agree "+
			"on how: %s. Your browser's hello carried %s. Whether its content is the cause cannot be told from these: "+
			"checking again, or mtuscope probe run from this network against this server, would decide.", c.ways(), carried)}
		if d.Verdict == diagnose.VerdictTLSFailed {
			d.Verdict, d.Direction = diagnose.VerdictInconclusive, diagnose.Unknown // who reset is not known
		}
	}
	f.Evidence = map[string]any{"reset_sizes": c.reset, "never_whole_sizes": c.stalled, "reset_unsure_sizes": c.resetUnsure,
		"lost_sizes": c.lost, "nothing_arrived_sizes": c.nothing,
		"full_packet_sizes": c.full, "hello_bytes": c.helloBytes, "hello_segments": c.segments,
		"pq_key_share": c.features.PQKeyShare.String(), "pq_offered": c.features.PQOffered.String(),
		"mldsa_sigalgs": c.features.MLDSA.String(), "sni": c.features.SNI.String()}
	if len(causes) > 0 {
		f.Evidence["candidates"] = causes
	}
	d.Findings = append([]diagnose.Finding{f}, d.Findings...)
	for _, fx := range diagnose.ContentFixes(causes...) {
		if !slices.ContainsFunc(d.Fixes, func(g diagnose.Fix) bool { return g.Code == fx.Code }) {
			d.Fixes = append(d.Fixes, fx)
		}
	}
}

// atSizes words at which of the tested sizes the hellos ended one way.
func (c *helloContent) atSizes(sizes []int) string {
	rest := len(uniqueSizes(c.tested)) - len(uniqueSizes(sizes)) - len(uniqueSizes(c.lost)) // lost ones: sizeLimit
	switch {
	case rest <= 0 && len(c.lost) > 0:
		return fmt.Sprintf("at every size up to %d bytes (%s)", slices.Max(sizes), sizeRange(sizes))
	case rest <= 0:
		return "at every size tested (" + sizeRange(sizes) + ")"
	case rest == 1:
		return "at " + sizeRange(sizes) + "; the other size tested says nothing of it (nothing of its hello reached the server, " +
			"or the server could not tell which connections were yours)"
	}
	return fmt.Sprintf("at %s; the other %d sizes tested say nothing of it (nothing of their hellos reached the server, "+
		"or the server could not tell which connections were yours)", sizeRange(sizes), rest)
}

// setPathMTU sets the path MTU the rungs show when their hellos failed
// for what they carry: the largest packet of the hello that crossed,
// unless a direction lost packets that large. Sizes at which the server's
// packets said nothing are no limit (behind a device that resets hellos,
// its reset can beat the client's acknowledgement of the probe's segment:
// agreeingProbes): a finding says how far downstream was measured.
func (c *helloContent) setPathMTU(d *diagnose.Diagnosis) {
	if len(c.full) == 0 || d.DownstreamMTU == 0 {
		return
	}
	d.PathMTU = min(slices.Max(c.full), d.UpstreamMTU)
	lostAbove := slices.ContainsFunc(c.downLost, func(size int) bool { return size > c.downPass })
	if lostAbove {
		d.PathMTU = min(d.PathMTU, d.DownstreamMTU)
	}
	if len(c.downUnmeasured) > 0 && !lostAbove {
		d.Findings = append(d.Findings, diagnose.Finding{Code: diagnose.CodeDownUntested, Detail: fmt.Sprintf(
			"Packets from the server to your computer were measured up to %d bytes; at %s the server's test packet said "+
				"nothing (its connection ended before your computer acknowledged it, or none arrived), and none larger was lost.",
			c.downPass, sizeRange(c.downUnmeasured)),
			Evidence: map[string]any{"downstream_tested_to": c.downPass, "downstream_unmeasured_sizes": c.downUnmeasured}})
	}
}

// sizeLimit words the sizes lost above those that crossed, if any.
func (c *helloContent) sizeLimit() string {
	if len(c.lost) == 0 || len(c.full) == 0 {
		return ""
	}
	return fmt.Sprintf(" Besides, at %s the hello's first, full-size packet never arrived: packets that large are lost on "+
		"this path too (a path MTU black hole above %d bytes, which the resets keep the page from measuring exactly; "+
		"mtuscope probe measures both).", sizeRange(c.lost), slices.Max(c.full))
}

// notSize words why packet size does not explain the failure: the sizes
// at which a full-size packet of the hello reached the server.
func (c *helloContent) notSize(failed []int) string {
	if len(c.full) == 0 {
		return ""
	}
	at := "at " + sizeRange(c.full)
	if len(uniqueSizes(c.full)) == len(uniqueSizes(failed)) {
		at = "at each of them"
	}
	return fmt.Sprintf(" (a full-size packet of the hello reached the server %s, and %s)", at, c.downstream())
}

// downstream words what the rungs' downstream tests showed.
func (c *helloContent) downstream() string {
	switch {
	case c.downPass == 0 && len(c.downLost) > 0:
		return "none of the server's test packets reached you (" + sizeRange(c.downLost) + ")"
	case c.downPass == 0:
		return "the server's packets were not measured"
	case len(c.downLost)+len(c.downUnmeasured) == 0:
		return "the server's packets of every size reached you"
	}
	parts := []string{fmt.Sprintf("the server's packets reached you up to %d bytes", c.downPass)}
	if len(c.downLost) > 0 {
		parts = append(parts, "at "+sizeRange(c.downLost)+" they were lost")
	}
	if len(c.downUnmeasured) > 0 {
		parts = append(parts, "at "+sizeRange(c.downUnmeasured)+" they were not measured")
	}
	return strings.Join(parts, "; ")
}

// carried lists what the hellos showed, and says what they could not.
func (c *helloContent) carried() string {
	f := c.features
	var parts []string
	switch {
	case f.PQKeyShare == tlswire.Present && f.PQGroup == tlswire.GroupX25519MLKEM768:
		parts = append(parts, "the post-quantum key share X25519MLKEM768 (0x11EC)")
	case f.PQKeyShare == tlswire.Present && f.PQGroup != 0:
		parts = append(parts, "the post-quantum key share of group "+f.PQGroup.String())
	case f.PQKeyShare == tlswire.Present:
		parts = append(parts, "a post-quantum key share")
	case f.PQOffered == tlswire.Present:
		parts = append(parts, "a post-quantum group, offered without its key share")
	case f.PQKeyShare == tlswire.Absent:
		parts = append(parts, "no post-quantum key share")
	default:
		parts = append(parts, "a post-quantum key share or not (that part never arrived)")
	}
	switch f.MLDSA {
	case tlswire.Present:
		parts = append(parts, "the ML-DSA signature algorithms (0x0904-0x0906)")
	case tlswire.Absent:
		parts = append(parts, "no ML-DSA signature algorithms")
	default:
		parts = append(parts, "ML-DSA signature algorithms or not (that part never arrived)")
	}
	switch {
	case f.ServerName != "":
		parts = append(parts, "the server name "+f.ServerName)
	case f.SNI == tlswire.Present:
		parts = append(parts, "a server name")
	case f.SNI == tlswire.Absent:
		parts = append(parts, "no server name")
	}
	if c.helloBytes > 0 {
		size := fmt.Sprintf("%d bytes", c.helloBytes)
		if c.segments > 1 {
			size += fmt.Sprintf(", split across %d TCP segments at the largest size", c.segments)
		}
		parts = append(parts, size)
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// candidates are the causes of content the hellos leave open, in
// diagnose's vocabulary: those whose feature the hello carried, and a
// device that cannot read a split hello when the hellos never arrived
// whole.
func (c *helloContent) candidates(stalled bool) []diagnose.Verdict {
	var out []diagnose.Verdict
	if c.features.PQKeyShare == tlswire.Present || c.features.PQOffered == tlswire.Present {
		out = append(out, diagnose.VerdictPQRejected)
	}
	if c.features.MLDSA == tlswire.Present {
		out = append(out, diagnose.VerdictMLDSARejected)
	}
	if stalled && c.segments > 1 {
		out = append(out, diagnose.VerdictSplitIntolerant)
	}
	if stalled && c.helloBytes >= 256+4 && c.helloBytes <= 511+4 {
		out = append(out, diagnose.VerdictLengthRejected)
	}
	return out
}

// ways words how the rungs failed, for the undecided finding.
func (c *helloContent) ways() string {
	var w []string
	if len(c.reset) > 0 {
		w = append(w, "reset by neither end at "+sizeRange(c.reset))
	}
	if len(c.resetUnsure) > 0 {
		w = append(w, "reset while the browser had given up (it may have sent the reset itself) at "+sizeRange(c.resetUnsure))
	}
	if len(c.stalled) > 0 {
		w = append(w, "the hello never arrived whole at "+sizeRange(c.stalled))
	}
	if len(c.lost) > 0 {
		w = append(w, "the hello's first packet was lost at "+sizeRange(c.lost))
	}
	if c.other > 0 {
		w = append(w, fmt.Sprintf("%d sizes failed otherwise", c.other))
	}
	return strings.Join(w, "; ")
}

// sizeRange words a list of packet sizes.
func sizeRange(sizes []int) string {
	u := uniqueSizes(sizes)
	switch len(u) {
	case 0:
		return "no size"
	case 1:
		return fmt.Sprintf("%d bytes", u[0])
	}
	return fmt.Sprintf("%d sizes from %d to %d bytes", len(u), u[0], u[len(u)-1])
}

// uniqueSizes returns the sizes sorted, each once.
func uniqueSizes(sizes []int) []int {
	u := slices.Clone(sizes)
	slices.Sort(u)
	return slices.Compact(u)
}
