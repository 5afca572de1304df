package incident

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes inc for a terminal (`gunicorn-reflex explain`): the
// verdict, what to do, the evidence (decisive first marked with *) and
// the remediation decisions, each with the cause it was taken under. An
// incident whose cause changed says since when the current one holds and
// gives a "before:" line per earlier cause.
func WriteText(w io.Writer, inc Incident) error {
	var b strings.Builder
	state := "open since " + inc.OpenedAt.UTC().Format(time.RFC3339)
	if inc.ClosedAt != nil {
		state = fmt.Sprintf("closed, %s to %s", inc.OpenedAt.UTC().Format(time.RFC3339), inc.ClosedAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "Incident %s of %s: %s (opened by %s)\n", inc.ID, inc.App, state, inc.Trigger)
	fmt.Fprintf(&b, "Verdict: %s (confidence %.2f)", inc.Cause, inc.Confidence)
	if n := len(inc.Causes); n > 1 {
		fmt.Fprintf(&b, ", since %s", hhmmss(inc.Causes[n-1].From))
	}
	fmt.Fprintf(&b, "\n  %s\n", inc.Summary)
	writeEarlierCauses(&b, inc)
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
		if d.Cause != "" {
			fmt.Fprintf(&b, " under %s", d.Cause)
		}
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

// writeEarlierCauses writes a line per cause before the current one,
// oldest first, and where the cap left some out.
func writeEarlierCauses(b *strings.Builder, inc Incident) {
	for i, c := range inc.Causes[:max(0, len(inc.Causes)-1)] {
		until := "?"
		if c.Until != nil {
			until = hhmmss(*c.Until)
		}
		fmt.Fprintf(b, "  before: %s %s–%s (%.2f): %s\n", c.Cause, hhmmss(c.From), until, c.Confidence, oneLine(c.Summary))
		if i == 0 && inc.CausesDropped > 0 {
			fmt.Fprintf(b, "  before: %d more cause(s) left out by the cap\n", inc.CausesDropped)
		}
	}
}

func hhmmss(t time.Time) string { return t.UTC().Format("15:04:05") }

// oneLine keeps a detail on its line: a terminal reader scans lines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
