package incident

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes inc for a terminal (`gunicorn-reflex explain`): the
// verdict, what to do, the evidence (decisive first marked with *) and
// the remediation decisions.
func WriteText(w io.Writer, inc Incident) error {
	var b strings.Builder
	state := "open since " + inc.OpenedAt.UTC().Format(time.RFC3339)
	if inc.ClosedAt != nil {
		state = fmt.Sprintf("closed, %s to %s", inc.OpenedAt.UTC().Format(time.RFC3339), inc.ClosedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "Incident %s of %s: %s (opened by %s)\n", inc.ID, inc.App, state, inc.Trigger)
	fmt.Fprintf(&b, "Verdict: %s (confidence %.2f)\n", inc.Cause, inc.Confidence)
	fmt.Fprintf(&b, "  %s\n", inc.Summary)
	if inc.Advice != "" {
		fmt.Fprintf(&b, "What to do: %s\n", inc.Advice)
	}
	fmt.Fprintf(&b, "Evidence (%d", len(inc.Evidence))
	if inc.EvidenceDropped > 0 {
		fmt.Fprintf(&b, ", %d more left out", inc.EvidenceDropped)
	}
	b.WriteString("; * decided the verdict):\n")
	for _, e := range inc.Evidence {
		mark := " "
		if e.Decisive {
			mark = "*"
		}
		fmt.Fprintf(&b, "  %s %s %s/%s", mark, e.Time.UTC().Format("15:04:05"), e.Source, e.Kind)
		if e.PID != 0 {
			fmt.Fprintf(&b, " pid %d", e.PID)
		}
		fmt.Fprintf(&b, ": %s\n", oneLine(e.Detail))
	}
	if len(inc.Decisions) == 0 {
		b.WriteString("Remediation decisions: none\n")
	} else {
		fmt.Fprintf(&b, "Remediation decisions (%d):\n", len(inc.Decisions))
	}
	for _, d := range inc.Decisions {
		fmt.Fprintf(&b, "    %s %s %s", d.Time.UTC().Format("15:04:05"), d.Action, d.Outcome)
		if d.Refusal != "" {
			fmt.Fprintf(&b, " (%s)", d.Refusal)
		}
		if d.Detail != "" {
			fmt.Fprintf(&b, ": %s", oneLine(d.Detail))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine keeps a detail on its line: a terminal reader scans lines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
