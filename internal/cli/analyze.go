package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mtuscope/mtuscope/analyze"
	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/mtuscope/mtuscope/internal/textsafe"
)

// analyzeArgs are the flags of `mtuscope analyze`.
type analyzeArgs struct {
	client, server string
	json           bool
	svg            string
	maxFlows       int
	maxRecords     int
}

func newAnalyzeCmd(g *globals) *cobra.Command {
	var a analyzeArgs
	cmd := &cobra.Command{
		Use:   "analyze FILE | analyze --client FILE --server FILE",
		Short: "Read packet captures: classify TLS handshakes, find the packets lost between two captures",
		Long: `analyze reads pcap or pcapng captures (gzipped or not; the format is read
from the content) and says what they show about the path.

With one capture it classifies every TLS handshake (completed,
stalled_clienthello, stalled_server_flight, no_clienthello, alert, reset,
timeout, not_tls) as watch does, finds the packets that were lost
(retransmitted or never acknowledged while the capture went on long enough
for an acknowledgement, or missing at the receiver while later bytes arrived
and not coming within a round trip; bytes the receiver acknowledged are a
capture drop, not a loss), the ICMP too-big messages and IP fragments, and
concludes as probe does: verdict, direction, path MTU, findings and fixes.
A capture that ends mid-handshake is no failure. When the sizes seen only
bracket the path MTU widely (a 630-byte packet through, 1500-byte ones lost,
nothing between), the range is given with its reason and the fixes name no
size.

With --client and --server (captures taken at both ends of the same
traffic) it matches the flows of the two captures, also across NAT, estimates
the clock offset between them, and compares them byte range by byte range in
each direction: every wire packet sent at one end is seen at the other or
listed as lost, with its size and time.

Capture at each end with:
  tcpdump -i IFACE -s 0 -w FILE 'tcp port 443 or icmp or icmp6'

Exit status: 0 when nothing is wrong (ok, pmtu_reduced), 1 when a problem was
found, 3 when the captures decide nothing (inconclusive), 2 when they could not
be analysed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runAnalyze(g, a, args) },
	}
	f := cmd.Flags()
	f.StringVar(&a.client, "client", "", "capture taken on (or next to) the client")
	f.StringVar(&a.server, "server", "", "capture taken on (or next to) the server")
	f.BoolVar(&a.json, "json", false, "print one JSON document (schema: docs/analyze-json.md)")
	f.StringVar(&a.svg, "svg", "", "write a ladder diagram of each stalled handshake to this SVG file")
	f.IntVar(&a.maxFlows, "max-flows", 0, "TCP flows followed at once (default 65536; past it a new flow pushes out an older one, counted)")
	f.IntVar(&a.maxRecords, "max-listed", 0, "finished flows kept for listing and pairing (default 50000; the rest still count)")
	return cmd
}

func runAnalyze(g *globals, a analyzeArgs, args []string) error {
	lim := analyze.Limits{MaxFlows: a.maxFlows, MaxRecords: a.maxRecords}
	// The live data is bounded by the limits; collect garbage less often
	// than the default (a short-lived process reading a stream), unless
	// GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	var res *analyze.Result
	var err error
	switch {
	case len(args) == 1 && (a.client != "" || a.server != ""):
		return withExit(ExitUsage, errors.New("give either one capture or --client and --server, not both"))
	case len(args) == 1:
		res, err = analyze.File(args[0], lim)
	case a.client != "" && a.server != "":
		res, err = analyze.Pair(a.client, a.server, lim)
	case a.client != "" || a.server != "":
		return withExit(ExitUsage, errors.New("--client and --server go together (for one capture, name it as the argument)"))
	default:
		return withExit(ExitUsage, errors.New("no capture: give FILE, or --client FILE --server FILE"))
	}
	if err != nil {
		return withExit(ExitUsage, err)
	}
	printWarnings(g, res.Warnings)
	if a.svg != "" {
		if err := writeSVGFile(a.svg, res); err != nil {
			return withExit(ExitUsage, err)
		}
	}
	if a.json {
		if err := res.WriteJSON(g.stdout); err != nil {
			return withExit(ExitUsage, err)
		}
	} else {
		writeAnalyzeHuman(g.stdout, res, useColor(g.stdout))
	}
	return verdictExit(res.Verdict)
}

// printWarnings writes what an analysis or a replay could not take in
// (a capture cut short) on standard error, one line each.
func printWarnings(g *globals, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(g.stderr, "mtuscope: warning: %s\n", textsafe.Escape(w))
	}
}

func writeSVGFile(path string, res *analyze.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("svg: %w", err)
	}
	if err := res.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("svg %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("svg %s: %w", path, err)
	}
	return nil
}

// maxLostShown bounds the lost packets the human output lists.
const maxLostShown = 20

func writeAnalyzeHuman(w io.Writer, res *analyze.Result, color bool) {
	if res.Mode == analyze.ModePair {
		c, s := res.Stats["client"], res.Stats["server"]
		fmt.Fprintf(w, "mtuscope analyze --client %s (%d packets, %d TCP flows) --server %s (%d packets, %d TCP flows)\n\n",
			res.Files.Client, c.Packets, c.Flows, res.Files.Server, s.Packets, s.Flows)
	} else {
		c := res.Stats["capture"]
		fmt.Fprintf(w, "mtuscope analyze %s (%d packets, %d TCP flows)\n\n", res.Files.Single, c.Packets, c.Flows)
	}
	verdict := string(res.Verdict)
	if color {
		code := "32"
		if res.Verdict.Problem() {
			code = "31"
		}
		verdict = "\033[1;" + code + "m" + verdict + "\033[0m"
	}
	fmt.Fprintf(w, "  verdict     %s (IPv%d)\n", verdict, res.Family)
	switch b := res.PathMTURange; {
	case res.PathMTU == 0 && b.Delivered > 0 && b.Lost > 0:
		// Only bracketed, too widely to name a size.
		fmt.Fprintf(w, "  path MTU    between %d and %d bytes, not measured: %s (largest packet through %d, smallest lost %d)\n",
			b.Delivered, b.Lost-1, b.Reason(), b.Delivered, b.Lost)
	case res.PathMTU == 0:
		fmt.Fprintf(w, "  path MTU    unknown\n")
	case res.PathMTUExact:
		fmt.Fprintf(w, "  path MTU    %d bytes (exact)\n", res.PathMTU)
	case res.PathMTURange.Lost > 0:
		fmt.Fprintf(w, "  path MTU    %d to %d bytes (largest packet through %d, smallest lost %d)\n",
			res.PathMTU, res.PathMTURange.Lost-1, res.PathMTU, res.PathMTURange.Lost)
	default:
		fmt.Fprintf(w, "  path MTU    at least %d bytes (the largest packet through)\n", res.PathMTU)
	}
	fmt.Fprintf(w, "  direction   %s\n", res.Direction)
	for _, d := range []struct {
		name string
		s    analyze.DirSummary
	}{{"upstream", res.Upstream}, {"downstream", res.Downstream}} {
		fmt.Fprintf(w, "  %-10s  largest delivered %s, smallest lost %s; %d lost (%d without explanation, %d with an ICMP too-big, %d resent smaller); ICMP too-big at the sender: %d\n",
			d.name, bytesOr(d.s.LargestDelivered, "none"), bytesOr(d.s.SmallestLost, "none"), d.s.LostPackets,
			d.s.LostSilently, d.s.LostSignalled, d.s.Recovered, d.s.TooBigReachedSender)
	}
	fmt.Fprintf(w, "  handshakes  %s\n", outcomeLine(res.Outcomes))
	fmt.Fprintf(w, "  ICMP        %d too-big; IP fragments: %d\n", res.ICMPTooBig, res.Fragments)
	if m := res.Matching; m != nil {
		fmt.Fprintf(w, "  matched     %d flows (%d by sequence numbers, %d by TCP timestamps); in one capture only: client %d, server %d\n",
			*res.MatchedFlows, m.BySequence, m.ByTimestamp, m.UnmatchedClient, m.UnmatchedServer)
		if m.AddressRewritten+m.PortRewritten+m.SequenceShifted > 0 {
			fmt.Fprintf(w, "  NAT         client address rewritten in %d flows, port in %d, sequence numbers shifted in %d\n",
				m.AddressRewritten, m.PortRewritten, m.SequenceShifted)
		}
		if m.ClockOffsetKnown {
			fmt.Fprintf(w, "  clocks      server capture %+.3f ms from the client capture (round trip %.3f ms)\n", m.ClockOffsetMS, m.RTTMS)
		} else {
			fmt.Fprintf(w, "  clocks      offset unknown (no flow with its SYN and SYN-ACK in both captures)\n")
		}
	}
	if len(res.Lost) > 0 {
		fmt.Fprintf(w, "\nLost packets (%d", len(res.Lost)+res.LostNotListed)
		if n := len(res.Lost) + res.LostNotListed; n > maxLostShown {
			fmt.Fprintf(w, ", first %d shown; --json lists %d", maxLostShown, len(res.Lost))
		}
		fmt.Fprintf(w, ")\n")
		for i, l := range res.Lost {
			if i == maxLostShown {
				break
			}
			var notes []string
			if l.Retransmission {
				notes = append(notes, "retransmission")
			}
			if l.ICMPSignalled {
				notes = append(notes, "ICMP too-big sent")
			}
			if l.RecoveredSmaller {
				notes = append(notes, "resent smaller")
			}
			if l.WithLarger {
				notes = append(notes, "in a super-segment with a larger lost packet")
			}
			note := l.How
			for _, n := range notes {
				note += ", " + n
			}
			// The packet's own way: server to client for a downstream loss.
			from, to := l.Flow.Client, l.Flow.Server
			if l.Direction == diagnose.Downstream {
				from, to = to, from
			}
			fmt.Fprintf(w, "  %-10s %5d B  %s  %s -> %s  seq %d-%d  %s\n", l.Direction, l.IPSize,
				l.Time.Format("15:04:05.000000"), from, to, l.Seq[0], l.Seq[1], note)
		}
	}
	writeFindings(w, res.Findings, res.Fixes)
	if res.StalledHandshakes() > 0 {
		fmt.Fprintf(w, "\nStalled handshakes\n")
		res.WriteLadderText(w)
	}
	fmt.Fprintf(w, "\n(--json for every handshake and lost packet, --svg FILE for the ladder diagrams)\n")
}

func bytesOr(n int, zero string) string {
	if n <= 0 {
		return zero
	}
	return fmt.Sprintf("%d B", n)
}

func outcomeLine(m map[diagnose.Outcome]int) string {
	if len(m) == 0 {
		return "none"
	}
	type oc struct {
		o diagnose.Outcome
		n int
	}
	var os []oc
	total := 0
	for o, n := range m {
		os = append(os, oc{o, n})
		total += n
	}
	sort.Slice(os, func(i, j int) bool { return os[i].n > os[j].n || os[i].n == os[j].n && os[i].o < os[j].o })
	s := fmt.Sprint(total, ":")
	for i, o := range os {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(" %d %s", o.n, o.o)
	}
	return s
}
