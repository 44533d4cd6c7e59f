package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	dms "github.com/aws/aws-sdk-go-v2/service/databasemigrationservice"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/seedrepl/seedrepl/internal/pgops"
	"github.com/seedrepl/seedrepl/internal/sferr"
)

// Rollback releases everything this migration created, from whatever
// partial state the failure left, in the safe order: DMS task, subscription
// on the target (detached: no source needed), the slot on the source (the
// critical one: a forgotten slot fills the production disk), the
// publication, the snapshot (before the instances: a restore still in
// flight cannot then leave one behind), the temporary instance, the Aurora
// instances and cluster, the DMS endpoints and replication instance. Everything is
// found by its deterministic name (the document may lack the results of a
// failed Parallel branch); nothing without this migration's tag is touched;
// "not found" is fine.
//
// It fails with Transient only when the slot could not be dropped. When the
// slot is gone but some AWS resource is in a passing state that refuses
// deletion (a cluster still creating, a DMS task still stopping), it fails
// with NotReadyYet so the state machine runs it again later; the slot is not
// touched again (already gone).
func (s *Steps) Rollback(ctx context.Context, st State) (*RollbackResult, error) {
	return s.release(ctx, st, "Rollback")
}

// Teardown ends a successful rehearsal: the same releases as Rollback, the
// Aurora cluster and its instances included.
func (s *Steps) Teardown(ctx context.Context, st State) (*RollbackResult, error) {
	return s.release(ctx, st, "Teardown")
}

type releaser struct {
	res     *RollbackResult
	pending []string
}

func (r *releaser) released(what string) { r.res.Released = append(r.res.Released, what) }
func (r *releaser) absent(what string)   { r.res.Absent = append(r.res.Absent, what) }
func (r *releaser) kept(what, why string) {
	r.res.Kept = append(r.res.Kept, what+": "+why)
}
func (r *releaser) failed(what string, err error) {
	r.res.Failed = append(r.res.Failed, what+": "+err.Error())
}

// outcome of one AWS delete call.
func (r *releaser) deleteResult(what string, err error, notFound, passing []string) {
	switch {
	case err == nil:
		r.released(what)
	case isCode(err, notFound...):
		r.absent(what)
	case isCode(err, passing...) || sferr.IsTransient(err):
		r.pending = append(r.pending, what)
		r.failed(what, fmt.Errorf("not deletable yet: %w", err))
	default:
		r.failed(what, err)
	}
}

func (s *Steps) release(ctx context.Context, st State, step string) (*RollbackResult, error) {
	log := s.logger(&st, step)
	in := st.Input
	if in.MigrationID == "" {
		return nil, sferr.InvalidInputf("no migrationId in the document: nothing can be found to release")
	}
	n := NamesFor(in)
	riName, srcName, tgtName, taskName := dmsNames(in.MigrationID)
	r := &releaser{res: &RollbackResult{Released: []string{}, Absent: []string{}}}
	if st.Error != nil {
		log.Info("releasing after failure", "error", st.Error.Error)
	}

	// 1. DMS task: stop it (it holds the slot), delete it once stopped.
	if s.DMS != nil {
		s.releaseTask(ctx, r, taskName)
	}

	// 2. The subscription on the target, detached so it needs no source.
	if c, err := s.describeCluster(ctx, n.Cluster); err != nil {
		r.failed("subscription "+n.Subscription+" (describe cluster)", err)
	} else if c == nil {
		r.absent("subscription " + n.Subscription + " (no cluster)")
	} else if aws.ToString(c.Status) != "available" || !ownedBy(c.TagList, in.MigrationID) {
		r.absent("subscription " + n.Subscription + " (cluster " + aws.ToString(c.Status) + ", not reachable: it goes with the cluster)")
	} else if tgt, err := s.connectTarget(ctx, in); err != nil {
		r.failed("subscription "+n.Subscription, err)
	} else {
		dropped, err := pgops.DropSubscription(ctx, tgt, n.Subscription)
		_ = tgt.Close(context.WithoutCancel(ctx))
		switch {
		case err != nil:
			r.failed("subscription "+n.Subscription, err)
		case dropped:
			r.released("subscription " + n.Subscription)
		default:
			r.absent("subscription " + n.Subscription)
		}
	}

	// 3. The slot, then 4. the publication, on the source.
	var slotErr error
	if src, err := s.connectSource(ctx, in); err != nil {
		slotErr = err
	} else {
		dropped, err := pgops.DropOwnedSlot(ctx, src, n.Slot, in.MigrationID)
		switch {
		case err != nil:
			slotErr = err
		case dropped:
			r.released("replication slot " + n.Slot)
		default:
			r.absent("replication slot " + n.Slot)
		}
		pub, err := pgops.DropOwnedPublication(ctx, src, n.Publication, in.MigrationID)
		var no *pgops.NotOwnedError
		switch {
		case errors.As(err, &no):
			r.kept("publication "+n.Publication, err.Error())
		case err != nil:
			r.failed("publication "+n.Publication, err)
		case pub:
			r.released("publication " + n.Publication)
		default:
			r.absent("publication " + n.Publication)
		}
		_ = src.Close(context.WithoutCancel(ctx))
	}
	if slotErr != nil {
		r.failed("replication slot "+n.Slot, slotErr)
	} else {
		r.res.SlotGone = true
	}

	// 5. The snapshot, before the instances: a restore call still in flight
	// from a failed Parallel then either fails (no snapshot) or made an
	// instance that the listing below sees.
	if sn, err := s.describeSnapshot(ctx, n.Snapshot); err != nil {
		r.failed("snapshot "+n.Snapshot, err)
	} else if sn == nil {
		r.absent("snapshot " + n.Snapshot)
	} else if !ownedBy(sn.TagList, in.MigrationID) {
		r.kept("snapshot "+n.Snapshot, "not tagged "+TagMigration+"="+in.MigrationID)
	} else if aws.ToString(sn.Status) == "deleting" {
		r.released("snapshot " + n.Snapshot + " (deleting)")
	} else {
		_, err := s.RDS.DeleteDBSnapshot(ctx, &rds.DeleteDBSnapshotInput{DBSnapshotIdentifier: aws.String(n.Snapshot)})
		r.deleteResult("snapshot "+n.Snapshot, err, []string{codeSnapshotNotFound}, []string{codeInvalidSnapshotSt})
	}

	// 6. The temporary instance, 7. the Aurora instances, 8. the cluster.
	for _, id := range []string{n.TempInstance, n.Writer} {
		s.releaseInstance(ctx, r, in.MigrationID, id)
	}
	for _, id := range n.Readers {
		s.releaseInstance(ctx, r, in.MigrationID, id)
	}
	s.releaseCluster(ctx, r, in.MigrationID, n)

	// 9. DMS endpoints and replication instance.
	if s.DMS != nil {
		for _, id := range []string{srcName, tgtName} {
			ep, err := s.describeEndpoint(ctx, id)
			switch {
			case err != nil:
				r.failed("DMS endpoint "+id, err)
			case ep == nil:
				r.absent("DMS endpoint " + id)
			default:
				_, err := s.DMS.DeleteEndpoint(ctx, &dms.DeleteEndpointInput{EndpointArn: ep.EndpointArn})
				r.deleteResult("DMS endpoint "+id, err, []string{codeDMSNotFound}, []string{codeDMSInvalidState})
			}
		}
		ri, err := s.describeReplicationInstance(ctx, riName)
		switch {
		case err != nil:
			r.failed("DMS replication instance "+riName, err)
		case ri == nil:
			r.absent("DMS replication instance " + riName)
		case aws.ToString(ri.ReplicationInstanceStatus) == "deleting":
			r.released("DMS replication instance " + riName + " (deleting)")
		default:
			_, err := s.DMS.DeleteReplicationInstance(ctx, &dms.DeleteReplicationInstanceInput{ReplicationInstanceArn: ri.ReplicationInstanceArn})
			r.deleteResult("DMS replication instance "+riName, err, []string{codeDMSNotFound}, []string{codeDMSInvalidState})
		}
	}

	r.res.At = s.stamp()
	log.Info("released", "released", len(r.res.Released), "absent", len(r.res.Absent), "failed", len(r.res.Failed),
		"slotGone", r.res.SlotGone, "pending", strings.Join(r.pending, ", "))
	if slotErr != nil {
		log.Error("THE REPLICATION SLOT WAS NOT DROPPED: it retains WAL on the source until it is", "slot", n.Slot, "error", slotErr.Error())
		return r.res, sferr.Transientf("%s: replication slot %s on %s could not be dropped (it retains WAL until it is): %v; released %s; could not release %s",
			step, n.Slot, in.Source.InstanceID, slotErr, strings.Join(r.res.Released, ", "), strings.Join(r.res.Failed, "; "))
	}
	if len(r.pending) > 0 {
		return r.res, sferr.NotReadyYetf("%s: slot %s is gone; still to release once they leave a passing state: %s (released so far: %s)",
			step, n.Slot, strings.Join(r.pending, ", "), strings.Join(r.res.Released, ", "))
	}
	return r.res, nil
}

func (s *Steps) releaseTask(ctx context.Context, r *releaser, taskName string) {
	task, err := s.describeTask(ctx, taskName)
	if err != nil {
		r.failed("DMS task "+taskName, err)
		return
	}
	if task == nil {
		r.absent("DMS task " + taskName)
		return
	}
	switch aws.ToString(task.Status) {
	case "deleting":
		r.released("DMS task " + taskName + " (deleting)")
	case "running", "starting", "resuming":
		_, err := s.DMS.StopReplicationTask(ctx, &dms.StopReplicationTaskInput{ReplicationTaskArn: task.ReplicationTaskArn})
		if err != nil && !isCode(err, codeDMSNotFound) {
			r.failed("DMS task "+taskName+" (stop)", err)
		}
		r.pending = append(r.pending, "DMS task "+taskName+" (stopping)")
	case "stopping", "creating", "modifying", "moving":
		r.pending = append(r.pending, "DMS task "+taskName+" ("+aws.ToString(task.Status)+")")
	default: // ready, stopped, failed, failed-move
		_, err := s.DMS.DeleteReplicationTask(ctx, &dms.DeleteReplicationTaskInput{ReplicationTaskArn: task.ReplicationTaskArn})
		r.deleteResult("DMS task "+taskName, err, []string{codeDMSNotFound}, []string{codeDMSInvalidState})
	}
}

func (s *Steps) releaseInstance(ctx context.Context, r *releaser, migrationID, id string) {
	what := "DB instance " + id
	db, err := s.describeInstance(ctx, id)
	switch {
	case err != nil:
		r.failed(what, err)
		return
	case db == nil:
		r.absent(what)
		return
	case !ownedBy(db.TagList, migrationID):
		r.kept(what, "not tagged "+TagMigration+"="+migrationID)
		return
	case aws.ToString(db.DBInstanceStatus) == "deleting":
		r.released(what + " (deleting)")
		return
	}
	_, err = s.RDS.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(id),
		SkipFinalSnapshot: aws.Bool(true), DeleteAutomatedBackups: aws.Bool(true)})
	r.deleteResult(what, err, []string{codeInstanceNotFound}, []string{codeInvalidInstanceSt})
}

func (s *Steps) releaseCluster(ctx context.Context, r *releaser, migrationID string, n Names) {
	what := "DB cluster " + n.Cluster
	c, err := s.describeCluster(ctx, n.Cluster)
	switch {
	case err != nil:
		r.failed(what, err)
		return
	case c == nil:
		r.absent(what)
		return
	case !ownedBy(c.TagList, migrationID):
		r.kept(what, "not tagged "+TagMigration+"="+migrationID)
		return
	case aws.ToString(c.Status) == "deleting":
		r.released(what + " (deleting)")
		return
	}
	// Members not named by this input (readers of an earlier, larger run).
	known := map[string]bool{n.Writer: true}
	for _, id := range n.Readers {
		known[id] = true
	}
	for _, m := range c.DBClusterMembers {
		if id := aws.ToString(m.DBInstanceIdentifier); !known[id] {
			s.releaseInstance(ctx, r, migrationID, id)
		}
	}
	_, err = s.RDS.DeleteDBCluster(ctx, &rds.DeleteDBClusterInput{DBClusterIdentifier: aws.String(n.Cluster), SkipFinalSnapshot: aws.Bool(true)})
	r.deleteResult(what, err, []string{codeClusterNotFound}, []string{codeInvalidClusterSt})
}
