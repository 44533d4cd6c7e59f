package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/steps"
)

type targetInfo struct {
	DSN  string `json:"dsn"`
	Note string `json:"note"`
}

// rehearsalReport is the execution's report plus what only the rehearsal knows.
type rehearsalReport struct {
	Mode           string        `json:"mode"`
	Status         string        `json:"status"`
	Error          string        `json:"error,omitempty"`
	Cause          string        `json:"cause,omitempty"`
	WallSeconds    float64       `json:"wallSeconds"`
	Phases         []phaseTime   `json:"phaseSeconds"`
	WriterCommits  int64         `json:"writerCommits"`
	SourceInstance string        `json:"sourceInstance"`
	Adopted        bool          `json:"adoptedSource"`
	Target         *targetInfo   `json:"target,omitempty"`
	Report         *steps.Report `json:"report,omitempty"`
}

func (r *rehearsalReport) notEqual() []string {
	if r.Report == nil {
		return []string{"no report"}
	}
	var bad []string
	for _, t := range r.Report.Validation {
		if t.Verdict != pgops.Equal {
			bad = append(bad, t.Table+" "+t.Verdict)
		}
	}
	if len(r.Report.Validation) == 0 {
		bad = append(bad, "no table validated")
	}
	return bad
}

func (r *rehearsalReport) write(dir string) (string, string, error) {
	base := filepath.Join(dir, "report-"+r.Mode)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	return base + ".json", base + ".md", os.WriteFile(base+".md", []byte(r.markdown()), 0o644)
}

func (r *rehearsalReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# seedrepl rehearsal — mode %s\n\n", r.Mode)
	fmt.Fprintf(&b, "Status: **%s** in %.1f s wall time; source %s (%s); the live writer committed %d transactions.\n\n",
		r.Status, r.WallSeconds, r.SourceInstance, map[bool]string{true: "adopted", false: "sample"}[r.Adopted], r.WriterCommits)
	if r.Error != "" {
		fmt.Fprintf(&b, "Error: `%s` — %s\n\n", r.Error, firstLineOf(r.Cause))
	}
	if rep := r.Report; rep != nil {
		b.WriteString("| | |\n|---|---|\n")
		for _, kv := range [][2]string{
			{"migration", rep.MigrationID}, {"outcome", rep.Outcome}, {"seed LSN", rep.SeedLSN},
			{"slot", rep.SlotName}, {"slot consistent point", rep.ConsistentPoint}, {"snapshot", rep.SnapshotID},
			{"Aurora cluster", rep.ClusterID}, {"instances", strings.Join(rep.InstanceIDs, ", ")},
			{"temporary instance", rep.TempInstanceID}, {"DMS task", rep.DMSTaskARN},
		} {
			if kv[1] != "" {
				fmt.Fprintf(&b, "| %s | `%s` |\n", kv[0], kv[1])
			}
		}
		if rep.LagBytes != nil {
			fmt.Fprintf(&b, "| lag at verification | %d bytes |\n", *rep.LagBytes)
		}
		b.WriteString("\n## Validation\n\n| table | verdict | source rows | target rows | attempts |\n|---|---|---:|---:|---:|\n")
		for _, t := range rep.Validation {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d |\n", t.Table, t.Verdict, t.Source.Rows, t.Target.Rows, t.Attempts)
		}
		if len(rep.Warnings) > 0 {
			b.WriteString("\n## Warnings\n\n")
			for _, w := range rep.Warnings {
				fmt.Fprintf(&b, "- %s\n", w)
			}
		}
		if rep.SecurityNote != "" {
			fmt.Fprintf(&b, "\n%s\n", rep.SecurityNote)
		}
	}
	b.WriteString("\n## Phases (wall time)\n\n| phase | seconds |\n|---|---:|\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %s | %.1f |\n", p.Name, p.Seconds)
	}
	if r.Target != nil {
		fmt.Fprintf(&b, "\nTarget (kept): `%s` — %s\n", r.Target.DSN, r.Target.Note)
	}
	return b.String()
}

func (r *rehearsalReport) summary() string {
	var b strings.Builder
	if r.Report != nil {
		fmt.Fprintf(&b, "  seed %s; slot %s (consistent point %s)\n", r.Report.SeedLSN, r.Report.SlotName, r.Report.ConsistentPoint)
		for _, t := range r.Report.Validation {
			fmt.Fprintf(&b, "  %-28s %-10s %9d rows\n", t.Table, t.Verdict, t.Target.Rows)
		}
	}
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "  phase %-40s %6.1fs\n", p.Name, p.Seconds)
	}
	return b.String()
}
