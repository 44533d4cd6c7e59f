package steps

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// SecurityNote is stated in every report.
const SecurityNote = "The subscription's CONNECTION (or DMS's source endpoint) holds the credentials of the dedicated replication role " +
	"(source.replicationSecretArn: rds_replication and SELECT on the published tables), never the master user's; " +
	"they are stored in the target's catalog (pg_subscription, readable by superusers) or in DMS. " +
	"Rotate that role's password, or drop the role, after cutover."

// Report builds the JSON report from the state document. It calls nothing.
func (s *Steps) Report(ctx context.Context, st State) (*Report, error) {
	log := s.logger(&st, "Report")
	in := st.Input
	n := NamesFor(in)
	r := &Report{MigrationID: in.MigrationID, Mode: in.Mode, Rehearsal: in.Rehearsal, Outcome: "replicating",
		SlotName: n.Slot, SnapshotID: n.Snapshot, ClusterID: n.Cluster, InstanceIDs: append([]string{n.Writer}, n.Readers...),
		TempInstanceID: n.TempInstance, SecurityNote: SecurityNote, GeneratedAt: s.stamp(), Phases: []Phase{}}
	if st.Error != nil {
		r.Outcome = "failed"
	}
	phase := func(name, start, end, status string) {
		if start != "" || end != "" || status != "" {
			r.Phases = append(r.Phases, Phase{Name: name, StartedAt: start, EndedAt: end, Status: status})
		}
	}
	if st.Plan != nil {
		phase("validate-input", "", st.Plan.ValidatedAt, "done")
		r.Warnings = append(r.Warnings, st.Plan.Warnings...)
	}
	if p := st.Preflight; p != nil {
		phase("preflight", p.StartedAt, p.FinishedAt, "done")
		if p.Report != nil {
			for _, w := range p.Report.Warnings {
				r.Warnings = append(r.Warnings, w.String())
			}
		}
	}
	if sl := st.Slot; sl != nil {
		r.SlotName = sl.SlotName
		if sl.ConsistentPoint != 0 {
			r.ConsistentPoint = sl.ConsistentPoint.String()
		}
		phase("publication-and-slot", "", sl.At, "done")
	}
	if p := st.Snapshot; p != nil {
		r.SnapshotID = p.ID
		phase("snapshot", p.StartedAt, "", p.Status)
	}
	if p := st.Aurora; p != nil {
		r.ClusterID, r.ClusterEndpoint, r.EngineVersion = p.ID, p.Endpoint, p.EngineVer
		phase("aurora-cluster", p.StartedAt, "", p.Status)
	}
	if p := st.AuroraInstances; p != nil {
		if len(p.IDs) > 0 {
			r.InstanceIDs = p.IDs
		}
		phase("aurora-instances", p.StartedAt, "", p.Status)
	}
	if p := st.Temp; p != nil {
		phase("temporary-instance", p.StartedAt, "", p.Status)
	}
	if sd := st.Seed; sd != nil {
		r.SeedLSN = sd.LSN.String()
		phase("seed", "", sd.At, "read")
	}
	if pr := st.Proof; pr != nil {
		phase("seed-proof", "", pr.At, map[bool]string{true: "proved", false: "not proved"}[pr.Proved])
	}
	if rp := st.Replication; rp != nil {
		r.DMSTaskARN = rp.TaskARN
		phase("replication", rp.StartedAt, rp.FinishedAt, rp.Status)
	}
	if l := st.Lag; l != nil {
		b := l.LagBytes
		r.LagBytes = &b
		phase("catch-up", l.StartedAt, l.At, map[bool]string{true: "caught up", false: "behind"}[l.Ready])
	}
	if v := st.Validation; v != nil {
		r.Validation = v.Tables
		phase("validation", v.StartedAt, v.FinishedAt, fmt.Sprintf("%d equal, %d different, %d unverified", v.Equal, v.Different, v.Unverified))
		if v.Unverified > 0 && r.Outcome == "replicating" {
			r.Outcome = "replicating-unverified"
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d table(s) could not be compared while the source held still: compare them again at a quiet moment", v.Unverified))
		}
	}
	log.Info("report", "outcome", r.Outcome, "seed", r.SeedLSN)
	return r, nil
}

// Notify publishes a short summary to SEEDREPL_TOPIC_ARN (logged only when
// none is configured).
func (s *Steps) Notify(ctx context.Context, st State) (*NotifyResult, error) {
	log := s.logger(&st, "Notify")
	summary := map[string]any{"migrationId": st.MigrationID, "mode": st.Mode, "rehearsal": st.Rehearsal}
	subject := "seedrepl " + st.MigrationID + ": "
	switch {
	case st.Error != nil:
		subject += "FAILED (" + st.Error.Error + ")"
		summary["outcome"] = "failed"
		summary["error"] = st.Error
		if st.Rollback != nil {
			summary["rollback"] = st.Rollback
		}
		if st.RollbackError != nil {
			subject += ", ROLLBACK FAILED: check the source for slot " + NamesFor(st.Input).Slot
			summary["rollbackError"] = st.RollbackError
		}
	case st.Report != nil:
		subject += st.Report.Outcome
		summary["outcome"] = st.Report.Outcome
		summary["seedLsn"] = st.Report.SeedLSN
		summary["clusterId"] = st.Report.ClusterID
		summary["lagBytes"] = st.Report.LagBytes
		if st.Validation != nil {
			summary["validation"] = map[string]int{"equal": st.Validation.Equal, "different": st.Validation.Different, "unverified": st.Validation.Unverified}
		}
		if st.Teardown != nil {
			summary["teardown"] = st.Teardown
		}
	default:
		subject += "finished"
	}
	if len(subject) > 100 { // SNS subject limit
		subject = subject[:100]
	}
	body, _ := json.MarshalIndent(summary, "", "  ")
	res := &NotifyResult{Subject: subject}
	if s.Config.TopicARN == "" || s.SNS == nil {
		log.Info("notification (no topic configured)", "subject", subject, "summary", string(body))
		return res, nil
	}
	out, err := s.SNS.Publish(ctx, &sns.PublishInput{TopicArn: aws.String(s.Config.TopicARN), Subject: aws.String(subject), Message: aws.String(string(body))})
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", s.Config.TopicARN, err)
	}
	res.Published, res.MessageID = true, aws.ToString(out.MessageId)
	log.Info("notification published", "subject", subject, "messageId", res.MessageID)
	return res, nil
}
