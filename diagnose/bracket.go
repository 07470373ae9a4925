package diagnose

import "fmt"

// CodeBracket is the finding that the evidence only brackets the path MTU,
// too widely for a fix to name a size.
const CodeBracket = "path_mtu_bracket"

// maxFixBracket is the widest bracket, bytes, whose lower end is still
// written into fixes as the MSS and tunnel MTU; a wider one would make
// them needlessly small (a 530-byte MTU for a 1400-byte path).
const maxFixBracket = 100

// Bracket returns what the diagnosis knows of the path MTU: it lies
// between lower and upper bytes. Wide says the bracket is too wide for a
// number (lower is then the largest packet seen to get through, not the
// path MTU); otherwise upper is 0 when nothing larger was lost.
func (d Diagnosis) Bracket() (lower, upper int, wide bool) {
	if d.bracketTop > 0 {
		return d.PathMTU, d.bracketTop, true
	}
	return d.PathMTU, d.pathMTUUpper, false
}

// noteBracket records that the path MTU lies between delivered and lost-1
// bytes. When that is wider than maxFixBracket, the fixes clamp to the
// route MTU instead of naming a size, and a finding says why no number is
// given: why completes "packets of D bytes got through, packets of L bytes
// were lost, and ...".
func (d *Diagnosis) noteBracket(delivered, lost int, why string, ev map[string]any) {
	if lost <= 0 || delivered <= 0 {
		return
	}
	d.pathMTUUpper = lost - 1
	if lost-delivered <= maxFixBracket {
		return
	}
	d.bracketTop = lost - 1
	if ev == nil {
		ev = map[string]any{}
	}
	ev["lower"], ev["upper"], ev["delivered"], ev["lost"] = delivered, lost-1, delivered, lost
	d.add(CodeBracket, fmt.Sprintf("The path MTU is only bracketed, between %d and %d bytes: packets of %d bytes got through, "+
		"packets of %d bytes were lost, and %s. The MSS clamp below follows the router's own route MTU, so it needs no number; "+
		"mtuscope probe or the diagnostic page, run from the client's network, measures the exact size.",
		delivered, lost-1, delivered, lost, why), ev)
}

// bracketReason words why a bracket from evidence is no narrower.
func bracketReason(ev Evidence, delivered, lost int) (string, map[string]any) {
	from, to := delivered+1, lost-1
	m := map[string]any{"untested_from": from, "untested_to": to}
	switch {
	case !ev.Captured:
		return fmt.Sprintf("no size between %d and %d bytes was tested", from, to), m
	case ev.SentInBracket == 0:
		return fmt.Sprintf("nothing between %d and %d bytes was sent", from, to), m
	}
	m["sent_in_bracket"] = ev.SentInBracket
	return fmt.Sprintf("the %d packets sent between %d and %d bytes say nothing of the size (lost together with a larger "+
		"packet, or the capture ended before their fate showed)", ev.SentInBracket, from, to), m
}
