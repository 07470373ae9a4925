package cli

import (
	"fmt"
	"io"

	"github.com/mtuscope/mtuscope/diagnose"
)

// writeFindings prints a diagnosis's findings and fixes, with each fix's
// commands indented below it, as probe and analyze show them.
func writeFindings(w io.Writer, findings []diagnose.Finding, fixes []diagnose.Fix) {
	if len(findings) > 0 {
		fmt.Fprintf(w, "\nFindings\n")
		for _, f := range findings {
			fmt.Fprintf(w, "  - %s: %s\n", f.Code, f.Detail)
		}
	}
	if len(fixes) > 0 {
		fmt.Fprintf(w, "\nFixes\n")
		for _, f := range fixes {
			fmt.Fprintf(w, "  - [%s] %s\n", f.Where, f.Title)
			for _, c := range f.Commands {
				fmt.Fprintf(w, "        %s\n", c)
			}
		}
	}
}
