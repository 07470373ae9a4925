package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtuscope/mtuscope/asn"
	"github.com/mtuscope/mtuscope/internal/textsafe"
)

// asnArgs are the flags of `mtuscope asn` and its subcommands.
type asnArgs struct {
	db            string
	asJSON        bool
	strict        bool
	allowOverlaps bool // accepted and ignored: the default since overlaps are resolved
	attribution   string
	urls          []string
	timeout       time.Duration
}

func newASNCmd(g *globals) *cobra.Command {
	a := &asnArgs{}
	cmd := &cobra.Command{
		Use:   "asn",
		Short: "Import, update and look up the IP-to-ASN database",
		Long: `The monitor and the page group clients by network (ASN and organisation).
asn builds that database from public datasets: MMDB (GeoLite2-ASN, DB-IP ASN
Lite, IPinfo ASN), iptoasn TSV and ip-location-db CSV, gzipped or not, or the
npm package @ip-location-db/asn as a .tgz.`,
	}
	cmd.PersistentFlags().StringVar(&a.db, "db", "", "database file (default $XDG_DATA_HOME/mtuscope/asn.db)")
	imp := &cobra.Command{
		Use:   "import FILE...",
		Short: "Build the database from dataset files, replacing the old one atomically",
		Long: `import builds the database from dataset files (MMDB, iptoasn TSV,
ip-location-db CSV, gzipped or not, or a .tgz package such as the one
npm pack @ip-location-db/asn downloads) and replaces the old one atomically.
Where ranges overlap the narrower one wins; the overlaps are counted, logged
at debug level and listed by asn status. --strict makes an overlap an error
instead. --allow-overlaps, from when failing was the default, is accepted and
does nothing.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error { return a.runImport(g, files) },
	}
	overlapFlags(imp, a)
	imp.Flags().StringVar(&a.attribution, "attribution", "", "attribution to show with the data, replacing the detected one")
	upd := &cobra.Command{
		Use:   "update",
		Short: "Download the datasets if they changed and import them atomically",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.runUpdate(cmd.Context(), g) },
	}
	upd.Flags().StringArrayVar(&a.urls, "url", nil, "dataset URL, repeatable (default: the @ip-location-db/asn IPv4 and IPv6 CSV files)")
	overlapFlags(upd, a)
	upd.Flags().StringVar(&a.attribution, "attribution", "", "attribution to show with the data, replacing the detected one")
	upd.Flags().DurationVar(&a.timeout, "timeout", 10*time.Minute, "give up after this long")
	upd.Flags().BoolVar(&a.asJSON, "json", false, "print the result as JSON")
	look := &cobra.Command{
		Use:   "lookup IP...",
		Short: "Print the ASN, organisation and matching range of addresses",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(cmd *cobra.Command, ips []string) error { return a.runLookup(g, ips) },
	}
	look.Flags().BoolVar(&a.asJSON, "json", false, "print as JSON")
	st := &cobra.Command{
		Use:   "status",
		Short: "Describe the database: sources, ranges, import time, attribution",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.runStatus(g) },
	}
	st.Flags().BoolVar(&a.asJSON, "json", false, "print as JSON")
	cmd.AddCommand(imp, upd, look, st)
	return cmd
}

// overlapFlags adds --strict and the old --allow-overlaps, now the default
// and accepted as a no-op so that scripts written for it keep working.
func overlapFlags(cmd *cobra.Command, a *asnArgs) {
	cmd.Flags().BoolVar(&a.strict, "strict", false, "fail on overlapping ranges instead of letting the narrower range win")
	cmd.Flags().BoolVar(&a.allowOverlaps, "allow-overlaps", false, "no-op: overlaps are resolved by default")
	_ = cmd.Flags().MarkHidden("allow-overlaps")
}

func (a *asnArgs) checkOverlapFlags() error {
	if a.strict && a.allowOverlaps {
		return withExit(ExitUsage, fmt.Errorf("--strict and --allow-overlaps contradict each other"))
	}
	return nil
}

func (a *asnArgs) path() (string, error) {
	if a.db != "" {
		return a.db, nil
	}
	p, err := asn.DefaultPath()
	if err != nil {
		return "", withExit(ExitUsage, err)
	}
	return p, nil
}

func (a *asnArgs) runImport(g *globals, files []string) error {
	if err := a.checkOverlapFlags(); err != nil {
		return err
	}
	db, err := a.path()
	if err != nil {
		return err
	}
	inputs := make([]asn.Input, len(files))
	for i, f := range files {
		inputs[i] = asn.Input{Path: f}
	}
	start := time.Now()
	meta, err := asn.Import(db, inputs, asn.ImportOptions{
		Strict: a.strict, Attribution: a.attribution, Logger: g.logger})
	if err != nil {
		return withExit(ExitUsage, err)
	}
	fmt.Fprintf(g.stdout, "imported %d IPv4 and %d IPv6 ranges into %s in %v\n",
		meta.V4Ranges, meta.V6Ranges, db, time.Since(start).Round(time.Millisecond))
	printMeta(g.stdout, meta, false)
	return nil
}

func (a *asnArgs) runUpdate(ctx context.Context, g *globals) error {
	if err := a.checkOverlapFlags(); err != nil {
		return err
	}
	db, err := a.path()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	u := &asn.Updater{DBPath: db, URLs: a.urls, Logger: g.logger,
		Import: asn.ImportOptions{Strict: a.strict, Attribution: a.attribution, Logger: g.logger}}
	res, err := u.Update(ctx)
	if err != nil {
		return withExit(ExitProblem, err)
	}
	if a.asJSON {
		return writeJSON(g.stdout, res)
	}
	for _, d := range res.Downloads {
		state := "not modified"
		if d.Fresh {
			state = "downloaded"
		}
		fmt.Fprintf(g.stdout, "%s: %s (%d bytes)\n", d.URL, state, d.Bytes)
	}
	if !res.Changed {
		fmt.Fprintf(g.stdout, "%s is up to date\n", db)
		return nil
	}
	fmt.Fprintf(g.stdout, "imported %d IPv4 and %d IPv6 ranges into %s\n", res.Meta.V4Ranges, res.Meta.V6Ranges, db)
	printMeta(g.stdout, *res.Meta, false)
	return nil
}

// lookupOutput is the JSON form of `asn lookup`.
type lookupOutput struct {
	Results     []asn.Result `json:"results"`
	Attribution string       `json:"attribution,omitempty"`
	Missing     string       `json:"missing,omitempty"`
}

func (a *asnArgs) runLookup(g *globals, ips []string) error {
	addrs := make([]netip.Addr, len(ips))
	for i, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return withExit(ExitUsage, fmt.Errorf("lookup: %q is not an IP address", s))
		}
		addrs[i] = ip
	}
	r, _, err := a.open(g)
	if err != nil {
		return err
	}
	st := r.Status()
	out := lookupOutput{Attribution: st.Attribution, Missing: st.Missing}
	for _, ip := range addrs {
		out.Results = append(out.Results, r.Lookup(ip))
	}
	if a.asJSON {
		if err := writeJSON(g.stdout, out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
		for _, res := range out.Results {
			if res.Found {
				fmt.Fprintf(tw, "%s\tAS%d\t%s\t%s\t%s-%s\n", res.Addr, res.ASN, textsafe.Escape(res.Org), res.Prefix, res.First, res.Last)
			} else {
				fmt.Fprintf(tw, "%s\t-\t(no ASN)\t%s\t(fallback group)\n", res.Addr, res.Prefix)
			}
		}
		tw.Flush()
		if out.Attribution != "" {
			fmt.Fprintf(g.stdout, "# %s\n", textsafe.Escape(out.Attribution))
		}
	}
	if st.Missing != "" {
		fmt.Fprintf(g.stderr, "mtuscope: %s\n", st.Missing)
		return withExit(ExitProblem, nil)
	}
	return nil
}

// open opens the database for reading; a missing one is the fallback, a
// damaged one an error.
func (a *asnArgs) open(g *globals) (r *asn.Resolver, db string, err error) {
	if db, err = a.path(); err != nil {
		return nil, "", err
	}
	if r, err = asn.Open(db, g.logger); err != nil {
		return nil, "", withExit(ExitUsage, err)
	}
	return r, db, nil
}

func (a *asnArgs) runStatus(g *globals) error {
	r, db, err := a.open(g)
	if err != nil {
		return err
	}
	st := r.Status()
	if a.asJSON {
		if err := writeJSON(g.stdout, st); err != nil {
			return err
		}
	} else if st.Loaded {
		fmt.Fprintf(g.stdout, "%s: %d IPv4 and %d IPv6 ranges, imported %s\n",
			db, st.Meta.V4Ranges, st.Meta.V6Ranges, st.Meta.ImportedAt.Format(time.RFC3339))
		printMeta(g.stdout, *st.Meta, true)
	}
	if st.Missing != "" {
		fmt.Fprintf(g.stderr, "mtuscope: %s\n", st.Missing)
		return withExit(ExitProblem, nil)
	}
	return nil
}

// printMeta describes a database, its attribution last; list names the
// overlaps resolved.
func printMeta(w io.Writer, m asn.Meta, list bool) {
	for _, s := range m.Sources {
		fmt.Fprintf(w, "  %s (%s): %d ranges\n", textsafe.Escape(s.Name), s.Format, s.Ranges)
	}
	if m.Overlaps > 0 {
		fmt.Fprintf(w, "  %d overlapping rows resolved, the narrower range winning (listed by `mtuscope asn status`)\n", m.Overlaps)
	}
	for _, o := range m.OverlapList {
		if list {
			fmt.Fprintf(w, "  overlap: %s and %s\n", textsafe.Escape(o.A), textsafe.Escape(o.B))
		}
	}
	if n := len(m.OverlapList); list && n < m.Overlaps {
		fmt.Fprintf(w, "  (%d more overlaps not listed)\n", m.Overlaps-n)
	}
	if a := m.Attribution(); a != "" {
		fmt.Fprintf(w, "# %s\n", textsafe.Escape(a))
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
