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
	// CodeHelloUndecided: the rungs failed in ways that do not agree, or a
	// reset that the browser may have sent.
	CodeHelloUndecided = "clienthello_content_undecided"
)

// helloContent is what a family's failed rungs show of its hellos.
type helloContent struct {
	reset, resetUnsure, stalled []int // IP packet sizes of the rungs read each way
	full                        []int // sizes at which a full-size packet of the hello arrived
	sizes                       int   // rungs that say something
	tested                      []int // sizes the page tested
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
		}
		if !r.hasBest || r.Uncertain != "" {
			continue // the join kept no connection of the page's as the rung's
		}
		best := r.Server[0]
		size := r.Test.UpSize // the rung's, or less when the client offered less
		seg := r.Test.UpSize - hdr - best.Info.OptionBytes()
		if best.HelloGot == 0 && best.HelloHash == "" {
			continue // nothing of the hello arrived: says nothing (a busy browser)
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
		default:
			c.sizes++ // failed some other way: it disagrees with the rest
			continue
		}
		c.sizes++
	}
	if c.sizes == 0 {
		return nil
	}
	return c
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
	if c == nil || d.Verdict == diagnose.VerdictTCPUnreachable {
		return
	}
	carried := c.carried()
	decide := "Which of these the device rejects cannot be told from a browser, whose ClientHello cannot be changed: " +
		"mtuscope probe, run from this network against this server, sends hellos that differ in one thing each and names it."
	var f diagnose.Finding
	var causes []diagnose.Verdict
	switch {
	case len(c.reset) >= 2 && len(c.reset) == c.sizes:
		f = diagnose.Finding{Code: CodeHelloResetByPath, Detail: fmt.Sprintf("Every handshake was reset while the ClientHello "+
			"was arriving, %s: the server saw each connection reset by an RST it did not send, and the "+
			"browser's request failed with a network error (within %d ms, not at its timeout), so neither end sent it: a device "+
			"on the path (a firewall or TLS inspection) resets connections because of what the hello carries, not because of "+
			"its size%s. Your browser's hello carried %s. %s",
			c.atSizes(c.reset), c.browserMs, c.notSize(c.reset), carried, decide)}
		causes = c.candidates(false)
		d.PathMTU = c.crossed(d)
		if d.Verdict == diagnose.VerdictInconclusive || d.Verdict == diagnose.VerdictTLSFailed {
			d.Verdict, d.Direction = diagnose.VerdictTLSFailed, diagnose.Upstream
		}
	case len(c.stalled) >= 2 && len(c.stalled) == c.sizes:
		f = diagnose.Finding{Code: CodeHelloNeverWhole, Detail: fmt.Sprintf("The ClientHello never arrived whole, %s, "+
			"and nothing reset the connections: the first, full-size packet of each hello reached the server and "+
			"the rest never did. Packet size does not explain it%s: something on the path drops a hello split across TCP "+
			"segments (it does not reassemble them) or drops it for what it carries. Your browser's hello carried %s. %s",
			c.atSizes(c.stalled), c.notSize(c.stalled), carried, decide)}
		causes = c.candidates(true)
		d.PathMTU = c.crossed(d)
		d.Direction = diagnose.Upstream
	default:
		f = diagnose.Finding{Code: CodeHelloUndecided, Detail: fmt.Sprintf("No handshake completed, but the sizes do not agree "+
			"on how: %s. Your browser's hello carried %s. Whether its content is the cause cannot be told from these: "+
			"checking again, or mtuscope probe run from this network against this server, would decide.", c.ways(), carried)}
		if d.Verdict == diagnose.VerdictTLSFailed {
			d.Verdict, d.Direction = diagnose.VerdictInconclusive, diagnose.Unknown // who reset is not known
		}
	}
	f.Evidence = map[string]any{"reset_sizes": c.reset, "never_whole_sizes": c.stalled, "reset_unsure_sizes": c.resetUnsure,
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
	rest := len(uniqueSizes(c.tested)) - len(uniqueSizes(sizes))
	switch {
	case rest <= 0:
		return "at every size tested (" + sizeRange(sizes) + ")"
	case rest == 1:
		return "at " + sizeRange(sizes) + "; the other size tested says nothing of it (nothing of its hello reached the server, " +
			"or the server could not tell which connections were yours)"
	}
	return fmt.Sprintf("at %s; the other %d sizes tested say nothing of it (nothing of their hellos reached the server, "+
		"or the server could not tell which connections were yours)", sizeRange(sizes), rest)
}

// crossed is the path MTU the rungs show when their hellos failed for
// what they carry: the largest packet that crossed both ways (0 where a
// direction saw none).
func (c *helloContent) crossed(d *diagnose.Diagnosis) int {
	if len(c.full) == 0 || d.DownstreamMTU == 0 {
		return d.PathMTU
	}
	return min(slices.Max(c.full), d.UpstreamMTU, d.DownstreamMTU)
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
	return fmt.Sprintf(" (a full-size packet of the hello reached the server %s, and the server's packets of every size "+
		"reached you)", at)
}

// carried lists what the hellos showed, and says what they could not.
func (c *helloContent) carried() string {
	f := c.features
	var parts []string
	switch {
	case f.PQKeyShare == tlswire.Present:
		parts = append(parts, "the post-quantum key share X25519MLKEM768 (0x11EC)")
	case f.PQOffered == tlswire.Present:
		parts = append(parts, "the post-quantum group X25519MLKEM768 (0x11EC), offered without its key share")
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
	if n := c.sizes - len(c.reset) - len(c.resetUnsure) - len(c.stalled); n > 0 {
		w = append(w, fmt.Sprintf("%d sizes failed otherwise", n))
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
