package steps

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

// Preflight inspects the source (RDS description, its parameter group, the
// database) before anything is created. It changes nothing. Problems fail
// the step with PreflightFailed; warnings are reported.
func (s *Steps) Preflight(ctx context.Context, st State) (*PreflightResult, error) {
	log := s.logger(&st, "Preflight")
	started := s.stamp()
	in := st.Input
	_, db, err := s.instanceEndpoint(ctx, in.Source.InstanceID)
	if err != nil {
		return nil, err
	}
	var awsProblems []pgops.Problem
	if e := aws.ToString(db.Engine); e != "postgres" {
		awsProblems = append(awsProblems, pgops.Problem{Code: "engine", Object: in.Source.InstanceID,
			Detail: "engine is " + e + ", not postgres", Fix: "the source must be RDS for PostgreSQL"})
	}
	if st := aws.ToString(db.DBInstanceStatus); st != "available" {
		return nil, sferr.NotReadyYetf("source %s is %s, not available", in.Source.InstanceID, st)
	}
	if db.ReadReplicaSourceDBInstanceIdentifier != nil {
		awsProblems = append(awsProblems, pgops.Problem{Code: "read-replica", Object: in.Source.InstanceID,
			Detail: "the source is a read replica", Fix: "migrate from the primary instance"})
	}
	for _, pg := range db.DBParameterGroups {
		val, err := s.parameterValue(ctx, aws.ToString(pg.DBParameterGroupName), "rds.logical_replication")
		if err != nil {
			return nil, err
		}
		if val != "1" {
			awsProblems = append(awsProblems, pgops.Problem{Code: "logical-replication-off", Object: aws.ToString(pg.DBParameterGroupName),
				Detail: "rds.logical_replication is " + orNone(val) + " in the source's parameter group",
				Fix:    "set rds.logical_replication = 1 in parameter group " + aws.ToString(pg.DBParameterGroupName) + " and reboot the instance"})
		} else if aws.ToString(pg.ParameterApplyStatus) == "pending-reboot" {
			awsProblems = append(awsProblems, pgops.Problem{Code: "pending-reboot", Object: in.Source.InstanceID,
				Detail: "the parameter group has changes pending a reboot", Fix: "reboot the source in a maintenance window first"})
		}
	}
	conn, err := s.connectSource(ctx, in)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep, err := pgops.Preflight(ctx, conn, pgops.PreflightOptions{Scope: in.Scope, ForDMS: in.Mode == ModeDMS})
	if err != nil {
		return nil, fmt.Errorf("preflight of %s: %w", in.Source.InstanceID, err)
	}
	rep.Problems = append(awsProblems, rep.Problems...)
	res := &PreflightResult{OK: len(rep.Problems) == 0, Report: rep, StartedAt: started, FinishedAt: s.stamp()}
	for _, w := range rep.Warnings {
		log.Warn("preflight warning", "code", w.Code, "object", w.Object, "detail", w.Detail)
	}
	if err := rep.Err(); err != nil {
		log.Error("preflight failed", "problems", len(rep.Problems))
		return nil, sferr.NewPreflightFailed(err)
	}
	log.Info("preflight passed", "tables", len(rep.Tables), "serverVersion", rep.ServerVersion)
	return res, nil
}

func orNone(s string) string {
	if s == "" {
		return "not set"
	}
	return s
}

// parameterValue reads one parameter of a DB parameter group.
func (s *Steps) parameterValue(ctx context.Context, group, name string) (string, error) {
	in := &rds.DescribeDBParametersInput{DBParameterGroupName: aws.String(group)}
	for page := 0; page < 50; page++ {
		out, err := s.RDS.DescribeDBParameters(ctx, in)
		if err != nil {
			return "", fmt.Errorf("describe parameters of %s: %w", group, err)
		}
		for _, p := range out.Parameters {
			if aws.ToString(p.ParameterName) == name {
				return aws.ToString(p.ParameterValue), nil
			}
		}
		if out.Marker == nil || *out.Marker == "" {
			return "", nil
		}
		in.Marker = out.Marker
	}
	return "", nil
}

// CreatePublicationAndSlot creates, on the source, the publication first
// (subscription mode) and then the logical slot, so WAL is retained from
// before the snapshot. Both are adopted when they already are this
// migration's.
func (s *Steps) CreatePublicationAndSlot(ctx context.Context, st State) (*SlotResult, error) {
	log := s.logger(&st, "CreatePublicationAndSlot")
	in := st.Input
	n := NamesFor(in)
	conn, err := s.connectSource(ctx, in)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res := &SlotResult{SlotName: n.Slot, Plugin: PluginFor(in.Mode)}
	if in.Mode == ModeSubscription {
		created, err := pgops.EnsurePublication(ctx, conn, n.Publication, in.Scope, in.MigrationID)
		if err != nil {
			return nil, fmt.Errorf("publication %s: %w", n.Publication, err)
		}
		res.Publication, res.PublicationCreated = n.Publication, created
		log.Info("publication ready", "publication", n.Publication, "created", created)
	}
	info, err := pgops.EnsureSlot(ctx, conn, n.Slot, res.Plugin, n.Publication)
	if err != nil {
		return nil, fmt.Errorf("slot %s: %w", n.Slot, err)
	}
	res.Created, res.ConsistentPoint, res.ConfirmedFlush = info.Created, info.ConsistentPoint, info.ConfirmedFlush
	res.At = s.stamp()
	if st.Slot != nil && !info.Created && st.Slot.At != "" {
		res.At = st.Slot.At // keep the first creation time across re-runs
		res.ConsistentPoint = st.Slot.ConsistentPoint
	}
	log.Info("slot ready", "slot", n.Slot, "plugin", res.Plugin, "created", info.Created, "consistentPoint", info.ConsistentPoint.String())
	return res, nil
}
