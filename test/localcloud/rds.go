package localcloud

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

type tag struct{ Key, Value string }

type instKind int

const (
	kindSource   instKind = iota + 1 // registered or adopted: never deleted, never stopped here
	kindRestored                     // RestoreDBInstanceFromDBSnapshot: its own cluster
	kindMember                       // CreateDBInstance in an Aurora cluster: the cluster's PostgreSQL
)

type dbInstance struct {
	id, arn       string
	kind          instKind
	created       time.Time
	readyAt       time.Time
	engine        string
	engineVersion string
	class         string
	paramGroup    string
	clusterID     string
	dbName        string
	masterUser    string
	secretArn     string
	resourceID    string

	source   *pgcluster.Cluster  // kindSource made by the program
	external *pgcluster.External // kindSource adopted
	restored *pgcluster.Restored // kindRestored
	dir      string              // its directory under the base dir
	done     bool
	err      error
	deleting bool
}

type dbCluster struct {
	id, arn        string
	created        time.Time
	readyAt        time.Time
	engine         string
	engineVersion  string
	pendingVersion string
	upgradeUntil   time.Time
	paramGroup     string
	snapshotID     string
	dbName         string
	masterUser     string
	resourceID     string
	members        []string

	restored *pgcluster.Restored
	dir      string
	done     bool
	err      error
	deleting bool
}

type dbSnapshot struct {
	id, arn       string
	instanceID    string
	created       time.Time
	readyAt       time.Time
	engine        string
	engineVersion string
	port          int
	masterUser    string
	dbName        string
	resourceID    string

	backup   *pgcluster.Backup
	dir      string
	done     bool
	err      error
	deleting bool
	users    int // restores copying the backup right now
}

// ---------------------------------------------------------------- statuses (s.mu held)

func (s *Server) snapshotStatus(sn *dbSnapshot, now time.Time) (string, int) {
	switch {
	case sn.deleting:
		return "deleting", 100
	case sn.err != nil:
		return "failed", 0
	case sn.done && !now.Before(sn.readyAt):
		return "available", 100
	}
	total := sn.readyAt.Sub(sn.created)
	pct := 99
	if total > 0 {
		pct = int(100 * now.Sub(sn.created) / total)
	}
	if pct > 99 {
		pct = 99
	}
	if pct < 0 {
		pct = 0
	}
	return "creating", pct
}

func (s *Server) clusterStatus(c *dbCluster, now time.Time) string {
	switch {
	case c.deleting:
		return "deleting"
	case c.err != nil:
		return "failed"
	case !c.done || now.Before(c.readyAt):
		return "creating"
	}
	if c.pendingVersion != "" {
		if now.Before(c.upgradeUntil) {
			return "upgrading"
		}
		// The upgrade is recorded, not performed: the local cluster keeps
		// running the PostgreSQL it was restored with. A real major version
		// upgrade (pg_upgrade between two installed majors) is out of scope.
		c.engineVersion, c.pendingVersion = c.pendingVersion, ""
	}
	return "available"
}

func (s *Server) instanceStatus(i *dbInstance, now time.Time) string {
	if i.deleting {
		return "deleting"
	}
	switch i.kind {
	case kindSource:
		if s.snapshotRunningLocked(i.id, now) {
			return "backing-up"
		}
		return "available"
	case kindRestored:
		switch {
		case i.err != nil:
			return "failed"
		case !i.done || now.Before(i.readyAt):
			return "creating"
		case s.snapshotRunningLocked(i.id, now):
			return "backing-up"
		}
		return "available"
	case kindMember:
		c := s.clusters[i.clusterID]
		if c == nil {
			return "failed"
		}
		switch cs := s.clusterStatus(c, now); cs {
		case "failed":
			return "failed"
		case "creating":
			return "creating"
		case "upgrading":
			if !now.Before(i.readyAt) {
				return "upgrading"
			}
		}
		if now.Before(i.readyAt) {
			return "creating"
		}
		return "available"
	}
	return "failed"
}

func (s *Server) snapshotRunningLocked(instanceID string, now time.Time) bool {
	for _, sn := range s.snapshots {
		if sn.instanceID == instanceID && !sn.deleting && sn.err == nil && !sn.done {
			return true
		}
	}
	return false
}

// port is the instance's PostgreSQL port, 0 if it has none yet.
func (s *Server) instancePortLocked(i *dbInstance) (string, int) {
	switch i.kind {
	case kindSource:
		if i.source != nil {
			return "127.0.0.1", i.source.Port
		}
		return i.external.Host, i.external.Port
	case kindRestored:
		if i.restored != nil {
			return "127.0.0.1", i.restored.Port
		}
	case kindMember:
		if c := s.clusters[i.clusterID]; c != nil && c.restored != nil {
			return "127.0.0.1", c.restored.Port
		}
	}
	return "", 0
}

// ---------------------------------------------------------------- rendering (s.mu held)

func (s *Server) tagList(arn string) []xTag {
	var out []xTag
	for _, t := range s.tags[arn] {
		out = append(out, xTag(t))
	}
	return out
}

func (s *Server) renderInstance(i *dbInstance, now time.Time) xInstance {
	status := s.instanceStatus(i, now)
	x := xInstance{DBInstanceIdentifier: i.id, DBInstanceArn: i.arn, DBInstanceClass: i.class, Engine: i.engine,
		EngineVersion: i.engineVersion, DBInstanceStatus: status, MasterUsername: i.masterUser, DBName: i.dbName,
		AllocatedStorage: 20, InstanceCreateTime: isoTime(i.created), BackupRetentionPeriod: 7,
		DBParameterGroups: []xParamGroupStatus{{DBParameterGroupName: i.paramGroup, ParameterApplyStatus: "in-sync"}},
		AvailabilityZone:  Region + "a", StorageType: "gp3", StorageEncrypted: true, DbiResourceId: i.resourceID,
		DBClusterIdentifier: i.clusterID, TagList: s.tagList(i.arn)}
	if i.kind == kindMember {
		x.StorageType = "aurora"
		if c := s.clusters[i.clusterID]; c != nil {
			x.EngineVersion = c.engineVersion
		}
	}
	if status == "available" || status == "backing-up" || status == "upgrading" {
		if host, port := s.instancePortLocked(i); port != 0 {
			x.Endpoint = &xEndpoint{Address: host, Port: port, HostedZoneId: "Z2R2ITUGPM61AM"}
		}
	}
	if i.secretArn != "" {
		x.MasterUserSecret = &xMasterUserSecret{SecretArn: i.secretArn, SecretStatus: "active"}
	}
	return x
}

func (s *Server) renderCluster(c *dbCluster, now time.Time) xCluster {
	status := s.clusterStatus(c, now)
	x := xCluster{DBClusterIdentifier: c.id, DBClusterArn: c.arn, Status: status, Engine: c.engine,
		EngineVersion: c.engineVersion, EngineMode: "provisioned", MasterUsername: c.masterUser, DatabaseName: c.dbName,
		DBClusterParameterGroup: c.paramGroup, ClusterCreateTime: isoTime(c.created), AllocatedStorage: 1,
		StorageEncrypted: true, DbClusterResourceId: c.resourceID, TagList: s.tagList(c.arn)}
	if c.restored != nil && (status == "available" || status == "upgrading") {
		x.Endpoint, x.ReaderEndpoint, x.Port = "127.0.0.1", "127.0.0.1", c.restored.Port
	}
	if c.pendingVersion != "" {
		x.PendingModifiedValues = &xClusterPending{EngineVersion: c.pendingVersion}
	}
	writer := true
	for _, m := range c.members {
		if i := s.instances[m]; i != nil {
			x.DBClusterMembers = append(x.DBClusterMembers, xClusterMember{DBInstanceIdentifier: m, IsClusterWriter: writer,
				DBClusterParameterGroupStatus: "in-sync", PromotionTier: 1})
			writer = false
		}
	}
	return x
}

func (s *Server) renderSnapshot(sn *dbSnapshot, now time.Time) xSnapshot {
	status, pct := s.snapshotStatus(sn, now)
	return xSnapshot{DBSnapshotIdentifier: sn.id, DBInstanceIdentifier: sn.instanceID, DBSnapshotArn: sn.arn,
		SnapshotCreateTime: isoTime(sn.created), InstanceCreateTime: isoTime(sn.created), Engine: sn.engine,
		EngineVersion: sn.engineVersion, Status: status, Port: sn.port, AllocatedStorage: 20, MasterUsername: sn.masterUser,
		SnapshotType: "manual", PercentProgress: pct, StorageType: "gp3", Encrypted: true, DbiResourceId: sn.resourceID,
		TagList: s.tagList(sn.arn)}
}

// ---------------------------------------------------------------- dispatch

type rdsHandler func(s *Server, f form) ([]any, *apiError)

var rdsActions = map[string]rdsHandler{
	"CreateDBSnapshot":                (*Server).createDBSnapshot,
	"DescribeDBSnapshots":             (*Server).describeDBSnapshots,
	"DeleteDBSnapshot":                (*Server).deleteDBSnapshot,
	"RestoreDBClusterFromSnapshot":    (*Server).restoreDBClusterFromSnapshot,
	"DescribeDBClusters":              (*Server).describeDBClusters,
	"ModifyDBCluster":                 (*Server).modifyDBCluster,
	"DeleteDBCluster":                 (*Server).deleteDBCluster,
	"CreateDBInstance":                (*Server).createDBInstance,
	"DescribeDBInstances":             (*Server).describeDBInstances,
	"DeleteDBInstance":                (*Server).deleteDBInstance,
	"RestoreDBInstanceFromDBSnapshot": (*Server).restoreDBInstanceFromDBSnapshot,
	"DescribeDBParameters":            (*Server).describeDBParameters,
	"AddTagsToResource":               (*Server).addTagsToResource,
	"ListTagsForResource":             (*Server).listTagsForResource,
	"RemoveTagsFromResource":          (*Server).removeTagsFromResource,
}

func (s *Server) serveRDS(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeRDSError(w, badRequest("MalformedQueryString", "%v", err))
		return
	}
	f := form(r.PostForm)
	action := f.str("Action")
	h, ok := rdsActions[action]
	if !ok {
		writeRDSError(w, badRequest("InvalidAction", "local cloud: RDS action %q is not implemented", action))
		return
	}
	if code, ok := s.takeFault(action); ok {
		s.log.Info("rds injected fault", "action", action, "code", code)
		writeRDSError(w, errf(faultStatus(code), code, "Rate exceeded (injected by the local cloud)"))
		return
	}
	out, apiErr := h(s, f)
	if apiErr != nil {
		s.log.Info("rds", "action", action, "error", apiErr.code, "message", apiErr.message)
		writeRDSError(w, apiErr)
		return
	}
	s.log.Debug("rds", "action", action)
	writeRDS(w, action, out...)
}

// ---------------------------------------------------------------- snapshots

func (s *Server) createDBSnapshot(f form) ([]any, *apiError) {
	id, e := rdsIdentifier("DBSnapshotIdentifier", f.str("DBSnapshotIdentifier"))
	if e != nil {
		return nil, e
	}
	instID, e := rdsIdentifier("DBInstanceIdentifier", f.str("DBInstanceIdentifier"))
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if _, ok := s.snapshots[id]; ok {
		return nil, badRequest("DBSnapshotAlreadyExists", "Cannot create the snapshot because a snapshot with the identifier %s already exists.", id)
	}
	inst := s.instances[instID]
	if inst == nil {
		return nil, notFound("DBInstanceNotFound", "DBInstance %s not found.", instID)
	}
	if inst.kind == kindMember {
		return nil, badRequest("InvalidDBInstanceState", "The specified instance %s is a member of a DB cluster; use CreateDBClusterSnapshot.", instID)
	}
	if st := s.instanceStatus(inst, now); st != "available" {
		return nil, badRequest("InvalidDBInstanceState", "Cannot create a snapshot because the database instance %s is not currently in the available state (%s).", instID, st)
	}
	sn := &dbSnapshot{id: id, arn: rdsARN("snapshot", id), instanceID: instID, created: now,
		readyAt: now.Add(s.delays.Snapshot), engine: inst.engine, engineVersion: inst.engineVersion,
		masterUser: inst.masterUser, dbName: inst.dbName, resourceID: inst.resourceID}
	_, sn.port = s.instancePortLocked(inst)
	backup := s.backupFuncLocked(inst)
	s.snapshots[id] = sn
	s.tags[sn.arn] = mergeTags(nil, f.tags("Tags"))
	s.background("snapshot "+id, func(ctx context.Context) {
		dir, err := s.subDir("snapshot", id)
		var b *pgcluster.Backup
		if err == nil {
			b, err = backup(ctx, dir)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		sn.backup, sn.err, sn.done, sn.dir = b, err, true, dir
		if err != nil {
			s.log.Error("snapshot failed", "snapshot", id, "error", err)
		} else {
			s.log.Info("snapshot taken", "snapshot", id, "start", b.StartLSN.String(), "end", b.EndLSN.String())
		}
	})
	return []any{s.renderSnapshot(sn, now)}, nil
}

func (s *Server) backupFuncLocked(inst *dbInstance) func(ctx context.Context, dir string) (*pgcluster.Backup, error) {
	switch {
	case inst.source != nil:
		c := inst.source
		return c.BaseBackup
	case inst.external != nil:
		return inst.external.BaseBackup
	case inst.restored != nil:
		return inst.restored.Cluster.BaseBackup
	}
	return func(context.Context, string) (*pgcluster.Backup, error) {
		return nil, fmt.Errorf("instance %s has no cluster", inst.id)
	}
}

func (s *Server) describeDBSnapshots(f form) ([]any, *apiError) {
	fs := f.filters()
	var snapID, instID string
	if v := f.str("DBSnapshotIdentifier"); v != "" {
		id, ok := idOrARN(v, "snapshot")
		if !ok {
			return nil, notFound("DBSnapshotNotFound", "DBSnapshot %s not found.", v)
		}
		snapID = id
	}
	if v := f.str("DBInstanceIdentifier"); v != "" {
		instID, _ = idOrARN(v, "db")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if snapID != "" && s.snapshots[snapID] == nil {
		return nil, notFound("DBSnapshotNotFound", "DBSnapshot %s not found.", snapID)
	}
	var out []xSnapshot
	for _, id := range sortedKeys(s.snapshots) {
		sn := s.snapshots[id]
		if (snapID != "" && id != snapID) || (instID != "" && sn.instanceID != instID) {
			continue
		}
		if st := f.str("SnapshotType"); st != "" && st != "manual" {
			continue
		}
		if !matchFilter(fs, "db-snapshot-id", sn.id, sn.arn) || !matchFilter(fs, "db-instance-id", sn.instanceID, rdsARN("db", sn.instanceID)) ||
			!matchFilter(fs, "snapshot-type", "manual") {
			continue
		}
		out = append(out, s.renderSnapshot(sn, now))
	}
	return []any{list("DBSnapshots", "DBSnapshot", out)}, nil
}

func (s *Server) deleteDBSnapshot(f form) ([]any, *apiError) {
	id, ok := idOrARN(f.str("DBSnapshotIdentifier"), "snapshot")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	sn := s.snapshots[id]
	if !ok || sn == nil {
		return nil, notFound("DBSnapshotNotFound", "DBSnapshot %s not found.", f.str("DBSnapshotIdentifier"))
	}
	if st, _ := s.snapshotStatus(sn, now); st != "available" && st != "failed" {
		return nil, badRequest("InvalidDBSnapshotState", "Cannot delete the snapshot because the snapshot %s is in the %s state.", id, st)
	}
	sn.deleting = true
	out := s.renderSnapshot(sn, now)
	delay := s.delays.Delete
	s.background("delete snapshot "+id, func(ctx context.Context) {
		// Wait for restores that are copying the backup.
		for {
			s.mu.Lock()
			users := sn.users
			s.mu.Unlock()
			if users == 0 || !sleepCtx(ctx, 100*time.Millisecond) {
				break
			}
		}
		sleepCtx(ctx, delay)
		s.waitDone(ctx, func() bool { return sn.done })
		s.removeDir(nil, sn.dir)
		s.mu.Lock()
		sn.backup = nil
		delete(s.snapshots, id)
		delete(s.tags, sn.arn)
		s.mu.Unlock()
	})
	return []any{out}, nil
}

// ---------------------------------------------------------------- restores

// takeSnapshotLocked finds an available snapshot for a restore and marks it in use.
func (s *Server) takeSnapshotLocked(v string, now time.Time) (*dbSnapshot, *apiError) {
	id, ok := idOrARN(v, "snapshot")
	if v == "" {
		return nil, badRequest("MissingParameter", "The request must contain the parameter SnapshotIdentifier")
	}
	sn := s.snapshots[id]
	if !ok || sn == nil {
		return nil, notFound("DBSnapshotNotFound", "DBSnapshot %s not found.", v)
	}
	if st, _ := s.snapshotStatus(sn, now); st != "available" {
		return nil, badRequest("InvalidDBSnapshotState", "Snapshot %s is not available (%s).", id, st)
	}
	sn.users++
	return sn, nil
}

func (s *Server) restoreDBClusterFromSnapshot(f form) ([]any, *apiError) {
	id, e := rdsIdentifier("DBClusterIdentifier", f.str("DBClusterIdentifier"))
	if e != nil {
		return nil, e
	}
	engine := f.str("Engine")
	if engine != "aurora-postgresql" {
		return nil, badRequest("InvalidParameterValue", "local cloud: Engine must be aurora-postgresql (got %q)", engine)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if _, ok := s.clusters[id]; ok {
		return nil, badRequest("DBClusterAlreadyExistsFault", "DB Cluster already exists")
	}
	sn, e := s.takeSnapshotLocked(f.str("SnapshotIdentifier"), now)
	if e != nil {
		return nil, e
	}
	c := &dbCluster{id: id, arn: rdsARN("cluster", id), created: now, readyAt: now.Add(s.delays.ClusterRestore),
		engine: engine, engineVersion: sn.engineVersion, paramGroup: "default.aurora-postgresql" + major(sn.engineVersion),
		snapshotID: sn.id, dbName: sn.dbName, masterUser: sn.masterUser, resourceID: "cluster-" + strings.ToUpper(randomSuffix(26))}
	if v := f.str("EngineVersion"); v != "" {
		c.engineVersion = v
	}
	if v := f.str("DBClusterParameterGroupName"); v != "" {
		c.paramGroup = v
	}
	s.clusters[id] = c
	s.tags[c.arn] = mergeTags(nil, f.tags("Tags"))
	s.restoreInBackground("aurora", id, sn, pgcluster.RestoreAurora, func(r *pgcluster.Restored, err error, dir string) {
		c.restored, c.err, c.done, c.dir = r, err, true, dir
	})
	return []any{s.renderCluster(c, now)}, nil
}

func (s *Server) restoreDBInstanceFromDBSnapshot(f form) ([]any, *apiError) {
	id, e := rdsIdentifier("DBInstanceIdentifier", f.str("DBInstanceIdentifier"))
	if e != nil {
		return nil, e
	}
	if v := f.str("DBClusterSnapshotIdentifier"); v != "" {
		return nil, badRequest("InvalidParameterValue", "local cloud: restoring an instance from a cluster snapshot is not supported")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if _, ok := s.instances[id]; ok {
		return nil, badRequest("DBInstanceAlreadyExists", "DB instance already exists")
	}
	sn, e := s.takeSnapshotLocked(f.str("DBSnapshotIdentifier"), now)
	if e != nil {
		return nil, e
	}
	i := &dbInstance{id: id, arn: rdsARN("db", id), kind: kindRestored, created: now, readyAt: now.Add(s.delays.TempRestore),
		engine: sn.engine, engineVersion: sn.engineVersion, class: orDefault(f.str("DBInstanceClass"), "db.t3.micro"),
		paramGroup: orDefault(f.str("DBParameterGroupName"), "default.postgres"+major(sn.engineVersion)),
		dbName:     sn.dbName, masterUser: sn.masterUser, resourceID: "db-" + strings.ToUpper(randomSuffix(26))}
	s.instances[id] = i
	s.tags[i.arn] = mergeTags(nil, f.tags("Tags"))
	s.restoreInBackground("rds", id, sn, pgcluster.RestoreRDS, func(r *pgcluster.Restored, err error, dir string) {
		i.restored, i.err, i.done, i.dir = r, err, true, dir
	})
	return []any{s.renderInstance(i, now)}, nil
}

func (s *Server) logf(format string, args ...any) {
	s.log.Debug(fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------- clusters

func (s *Server) describeDBClusters(f form) ([]any, *apiError) {
	fs := f.filters()
	var want string
	if v := f.str("DBClusterIdentifier"); v != "" {
		id, ok := idOrARN(v, "cluster")
		if !ok {
			return nil, notFound("DBClusterNotFoundFault", "DBCluster %s not found.", v)
		}
		want = id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if want != "" && s.clusters[want] == nil {
		return nil, notFound("DBClusterNotFoundFault", "DBCluster %s not found.", want)
	}
	var out []xCluster
	for _, id := range sortedKeys(s.clusters) {
		c := s.clusters[id]
		if (want != "" && id != want) || !matchFilter(fs, "db-cluster-id", c.id, c.arn) || !matchFilter(fs, "engine", c.engine) {
			continue
		}
		out = append(out, s.renderCluster(c, now))
	}
	return []any{list("DBClusters", "DBCluster", out)}, nil
}

func (s *Server) modifyDBCluster(f form) ([]any, *apiError) {
	id, ok := idOrARN(f.str("DBClusterIdentifier"), "cluster")
	if v := f.str("NewDBClusterIdentifier"); v != "" {
		return nil, badRequest("InvalidParameterValue", "local cloud: renaming a cluster is not supported")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	c := s.clusters[id]
	if !ok || c == nil {
		return nil, notFound("DBClusterNotFoundFault", "DBCluster %s not found.", f.str("DBClusterIdentifier"))
	}
	if st := s.clusterStatus(c, now); st != "available" {
		return nil, badRequest("InvalidDBClusterStateFault", "DB cluster %s is not in the available state (%s).", id, st)
	}
	if v := f.str("DBClusterParameterGroupName"); v != "" {
		c.paramGroup = v
	}
	if v := f.str("EngineVersion"); v != "" && v != c.engineVersion {
		from, to := versionParts(c.engineVersion), versionParts(v)
		if to == nil {
			return nil, badRequest("InvalidParameterCombination", "Cannot find version %s for aurora-postgresql", v)
		}
		if compareVersions(to, from) < 0 {
			return nil, badRequest("InvalidParameterCombination", "Cannot upgrade aurora-postgresql from %s to %s", c.engineVersion, v)
		}
		if from != nil && to[0] != from[0] && !f.boolean("AllowMajorVersionUpgrade") {
			return nil, badRequest("InvalidParameterCombination", "The AllowMajorVersionUpgrade flag must be present when upgrading to a new major version.")
		}
		// Recorded only: see clusterStatus.
		c.pendingVersion = v
		c.upgradeUntil = now.Add(s.delays.Upgrade)
	}
	return []any{s.renderCluster(c, now)}, nil
}

func (s *Server) deleteDBCluster(f form) ([]any, *apiError) {
	id, ok := idOrARN(f.str("DBClusterIdentifier"), "cluster")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	c := s.clusters[id]
	if !ok || c == nil {
		return nil, notFound("DBClusterNotFoundFault", "DBCluster %s not found.", f.str("DBClusterIdentifier"))
	}
	if c.deleting {
		return nil, badRequest("InvalidDBClusterStateFault", "DB cluster %s is already being deleted.", id)
	}
	for _, m := range c.members {
		if i := s.instances[m]; i != nil && !i.deleting {
			return nil, badRequest("InvalidDBClusterStateFault", "Cluster cannot be deleted, it still contains DB instances in non-deleting state.")
		}
	}
	if !f.boolean("SkipFinalSnapshot") {
		if f.str("FinalDBSnapshotIdentifier") == "" {
			return nil, badRequest("InvalidParameterCombination", "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is set.")
		}
		return nil, badRequest("InvalidParameterValue", "local cloud: final cluster snapshots are not supported; use SkipFinalSnapshot")
	}
	out := s.renderCluster(c, now)
	c.deleting = true
	out.Status = "deleting"
	delay := s.delays.Delete
	s.background("delete cluster "+id, func(ctx context.Context) {
		s.waitDone(ctx, func() bool { return c.done })
		sleepCtx(ctx, delay)
		s.mu.Lock()
		r := c.restored
		c.restored = nil
		s.mu.Unlock()
		s.removeDir(r, c.dir)
		s.mu.Lock()
		delete(s.clusters, id)
		delete(s.tags, c.arn)
		s.mu.Unlock()
	})
	return []any{out}, nil
}

// waitDone polls cond (under s.mu) until true or the server closes.
func (s *Server) waitDone(ctx context.Context, cond func() bool) {
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok || !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
}

// removeDir stops r (if any) and deletes a resource's directory.
func (s *Server) removeDir(r *pgcluster.Restored, dir string) {
	if r != nil {
		if err := r.Remove(); err != nil {
			s.log.Error("remove cluster", "dir", r.Dir, "error", err)
		}
	}
	if dir == "" {
		return
	}
	if err := sweepTree(dir); err != nil {
		s.log.Error("remove directory", "dir", dir, "error", err)
	}
	s.mu.Lock()
	s.forgetDirLocked(dir)
	s.mu.Unlock()
}

// ---------------------------------------------------------------- instances

func (s *Server) createDBInstance(f form) ([]any, *apiError) {
	id, e := rdsIdentifier("DBInstanceIdentifier", f.str("DBInstanceIdentifier"))
	if e != nil {
		return nil, e
	}
	clusterID, ok := idOrARN(f.str("DBClusterIdentifier"), "cluster")
	if f.str("DBClusterIdentifier") == "" {
		return nil, badRequest("InvalidParameterCombination", "local cloud: CreateDBInstance supports instances of an Aurora cluster only (set DBClusterIdentifier)")
	}
	if eng := f.str("Engine"); eng != "aurora-postgresql" {
		return nil, badRequest("InvalidParameterCombination", "The engine name requested for your DB instance (%s) doesn't match the engine name of your DB cluster (aurora-postgresql).", eng)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if _, exists := s.instances[id]; exists {
		return nil, badRequest("DBInstanceAlreadyExists", "DB instance already exists")
	}
	c := s.clusters[clusterID]
	if !ok || c == nil {
		return nil, notFound("DBClusterNotFoundFault", "DBCluster %s not found.", f.str("DBClusterIdentifier"))
	}
	if st := s.clusterStatus(c, now); st == "deleting" || st == "failed" {
		return nil, badRequest("InvalidDBClusterStateFault", "DB cluster %s is in the %s state.", clusterID, st)
	}
	i := &dbInstance{id: id, arn: rdsARN("db", id), kind: kindMember, created: now, readyAt: now.Add(s.delays.Instance),
		engine: c.engine, engineVersion: c.engineVersion, class: orDefault(f.str("DBInstanceClass"), "db.r6g.large"),
		paramGroup: orDefault(f.str("DBParameterGroupName"), "default.aurora-postgresql"+major(c.engineVersion)),
		clusterID:  clusterID, dbName: c.dbName, masterUser: c.masterUser, resourceID: "db-" + strings.ToUpper(randomSuffix(26))}
	s.instances[id] = i
	c.members = append(c.members, id)
	s.tags[i.arn] = mergeTags(nil, f.tags("Tags"))
	return []any{s.renderInstance(i, now)}, nil
}

func (s *Server) describeDBInstances(f form) ([]any, *apiError) {
	fs := f.filters()
	var want string
	if v := f.str("DBInstanceIdentifier"); v != "" {
		id, ok := idOrARN(v, "db")
		if !ok {
			return nil, notFound("DBInstanceNotFound", "DBInstance %s not found.", v)
		}
		want = id
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if want != "" && s.instances[want] == nil {
		return nil, notFound("DBInstanceNotFound", "DBInstance %s not found.", want)
	}
	var out []xInstance
	for _, id := range sortedKeys(s.instances) {
		i := s.instances[id]
		if want != "" && id != want {
			continue
		}
		if !matchFilter(fs, "db-instance-id", i.id, i.arn) || !matchFilter(fs, "engine", i.engine) {
			continue
		}
		if !matchFilter(fs, "db-cluster-id", i.clusterID, rdsARN("cluster", i.clusterID)) {
			continue
		}
		out = append(out, s.renderInstance(i, now))
	}
	return []any{list("DBInstances", "DBInstance", out)}, nil
}

func (s *Server) deleteDBInstance(f form) ([]any, *apiError) {
	id, ok := idOrARN(f.str("DBInstanceIdentifier"), "db")
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	i := s.instances[id]
	if !ok || i == nil {
		return nil, notFound("DBInstanceNotFound", "DBInstance %s not found.", f.str("DBInstanceIdentifier"))
	}
	if i.deleting {
		return nil, badRequest("InvalidDBInstanceState", "Instance %s is already being deleted.", id)
	}
	if i.kind == kindSource {
		return nil, badRequest("InvalidDBInstanceState", "local cloud: %s is a registered source and is never deleted here.", id)
	}
	if i.kind == kindRestored && !f.boolean("SkipFinalSnapshot") && f.str("FinalDBSnapshotIdentifier") == "" {
		return nil, badRequest("InvalidParameterCombination", "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.")
	}
	if i.kind == kindRestored && f.str("FinalDBSnapshotIdentifier") != "" && !f.boolean("SkipFinalSnapshot") {
		return nil, badRequest("InvalidParameterValue", "local cloud: final snapshots are not supported; use SkipFinalSnapshot")
	}
	out := s.renderInstance(i, now)
	i.deleting = true
	out.DBInstanceStatus = "deleting"
	delay := s.delays.Delete
	s.background("delete instance "+id, func(ctx context.Context) {
		s.waitDone(ctx, func() bool { return i.kind != kindRestored || i.done })
		sleepCtx(ctx, delay)
		s.mu.Lock()
		r := i.restored
		i.restored = nil
		s.mu.Unlock()
		s.removeDir(r, i.dir)
		s.mu.Lock()
		delete(s.instances, id)
		delete(s.tags, i.arn)
		if c := s.clusters[i.clusterID]; c != nil {
			c.members = removeString(c.members, id)
		}
		s.mu.Unlock()
	})
	return []any{out}, nil
}

// ---------------------------------------------------------------- parameters

// reported parameters: name → (data type, modifiable).
var reportedParams = []string{"wal_level", "max_replication_slots", "max_wal_senders", "max_worker_processes",
	"max_logical_replication_workers", "max_slot_wal_keep_size", "wal_sender_timeout", "shared_preload_libraries",
	"synchronous_commit", "max_connections"}

func (s *Server) describeDBParameters(f form) ([]any, *apiError) {
	group := f.str("DBParameterGroupName")
	if group == "" {
		return nil, badRequest("MissingParameter", "The request must contain the parameter DBParameterGroupName")
	}
	var connect func(ctx context.Context) (*pgx.Conn, error)
	s.mu.Lock()
	now := time.Now()
	for _, id := range sortedKeys(s.instances) {
		i := s.instances[id]
		if i.paramGroup != group || i.deleting {
			continue
		}
		st := s.instanceStatus(i, now)
		if st != "available" && st != "backing-up" {
			continue
		}
		switch {
		case i.source != nil:
			c := i.source
			connect = func(ctx context.Context) (*pgx.Conn, error) { return c.Connect(ctx, "postgres") }
		case i.external != nil:
			e := i.external
			connect = func(ctx context.Context) (*pgx.Conn, error) { return e.Connect(ctx, "") }
		case i.restored != nil:
			r := i.restored
			connect = func(ctx context.Context) (*pgx.Conn, error) { return r.Connect(ctx, "postgres") }
		case i.kind == kindMember:
			if c := s.clusters[i.clusterID]; c != nil && c.restored != nil {
				r := c.restored
				connect = func(ctx context.Context) (*pgx.Conn, error) { return r.Connect(ctx, "postgres") }
			}
		}
		if connect != nil {
			break
		}
	}
	s.mu.Unlock()
	if connect == nil {
		if strings.HasPrefix(group, "default.") {
			return []any{list("Parameters", "Parameter", filterParams(f, []xParameter{
				param("rds.logical_replication", "0", "engine-default", "boolean"),
				param("wal_level", "replica", "engine-default", "string")}))}, nil
		}
		return nil, notFound("DBParameterGroupNotFound", "DBParameterGroup not found: %s", group)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := connect(ctx)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalFailure", "local cloud: connect to read parameters: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT name, setting, vartype FROM pg_settings WHERE name = ANY($1) ORDER BY name", reportedParams)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalFailure", "local cloud: read parameters: %v", err)
	}
	type setting struct{ name, value, typ string }
	settings, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (setting, error) {
		var st setting
		return st, r.Scan(&st.name, &st.value, &st.typ)
	})
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalFailure", "local cloud: read parameters: %v", err)
	}
	logical := "0"
	var out []xParameter
	for _, st := range settings {
		if st.name == "wal_level" && st.value == "logical" {
			logical = "1"
		}
		out = append(out, param(st.name, st.value, "system", st.typ))
	}
	src := "engine-default"
	if logical == "1" {
		src = "user"
	}
	out = append([]xParameter{param("rds.logical_replication", logical, src, "boolean")}, out...)
	return []any{list("Parameters", "Parameter", filterParams(f, out))}, nil
}

func param(name, value, source, typ string) xParameter {
	dt := map[string]string{"bool": "boolean", "integer": "integer", "real": "float", "enum": "string", "string": "string"}[typ]
	if dt == "" {
		dt = typ
	}
	return xParameter{ParameterName: name, ParameterValue: value, Source: source, ApplyType: "static", DataType: dt,
		IsModifiable: name == "rds.logical_replication", ApplyMethod: "pending-reboot"}
}

func filterParams(f form, ps []xParameter) []xParameter {
	src := f.str("Source")
	if src == "" {
		return ps
	}
	var out []xParameter
	for _, p := range ps {
		if p.Source == src {
			out = append(out, p)
		}
	}
	return out
}

// ---------------------------------------------------------------- tags

// resolveARNLocked checks that an RDS ARN names an existing resource.
func (s *Server) resolveARNLocked(arn string) *apiError {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || parts[2] != "rds" {
		return badRequest("InvalidParameterValue", "Invalid resource name: %s", arn)
	}
	id := parts[6]
	switch parts[5] {
	case "db":
		if s.instances[id] == nil {
			return notFound("DBInstanceNotFound", "DBInstance %s not found.", id)
		}
	case "cluster":
		if s.clusters[id] == nil {
			return notFound("DBClusterNotFoundFault", "DBCluster %s not found.", id)
		}
	case "snapshot":
		if s.snapshots[id] == nil {
			return notFound("DBSnapshotNotFound", "DBSnapshot %s not found.", id)
		}
	default:
		return badRequest("InvalidParameterValue", "local cloud: tags on %s resources are not supported", parts[5])
	}
	return nil
}

func (s *Server) addTagsToResource(f form) ([]any, *apiError) {
	arn := f.str("ResourceName")
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.resolveARNLocked(arn); e != nil {
		return nil, e
	}
	s.tags[arn] = mergeTags(s.tags[arn], f.tags("Tags"))
	return nil, nil
}

func (s *Server) listTagsForResource(f form) ([]any, *apiError) {
	arn := f.str("ResourceName")
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.resolveARNLocked(arn); e != nil {
		return nil, e
	}
	return []any{list("TagList", "Tag", s.tagList(arn))}, nil
}

func (s *Server) removeTagsFromResource(f form) ([]any, *apiError) {
	arn := f.str("ResourceName")
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.resolveARNLocked(arn); e != nil {
		return nil, e
	}
	drop := map[string]bool{}
	for _, k := range f.members("TagKeys.member") {
		drop[k] = true
	}
	var kept []tag
	for _, t := range s.tags[arn] {
		if !drop[t.Key] {
			kept = append(kept, t)
		}
	}
	s.tags[arn] = kept
	return nil, nil
}

func mergeTags(have, add []tag) []tag {
	out := append([]tag(nil), have...)
	for _, t := range add {
		replaced := false
		for i := range out {
			if out[i].Key == t.Key {
				out[i].Value, replaced = t.Value, true
			}
		}
		if !replaced {
			out = append(out, t)
		}
	}
	return out
}

// ---------------------------------------------------------------- small helpers

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func removeString(list []string, v string) []string {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// major is the major version: "15.4" → "15".
func major(v string) string {
	if i := strings.IndexByte(v, '.'); i > 0 {
		return v[:i]
	}
	return v
}

func versionParts(v string) []int {
	var out []int
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func compareVersions(a, b []int) int {
	for k := 0; k < len(a) || k < len(b); k++ {
		var x, y int
		if k < len(a) {
			x = a[k]
		}
		if k < len(b) {
			y = b[k]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// restoreInBackground restores the snapshot's backup into a new cluster
// (kind "aurora" or "rds") off the request path; done records the outcome
// under the server's lock, when the snapshot is released.
func (s *Server) restoreInBackground(kind, id string, sn *dbSnapshot,
	restore func(context.Context, *pgcluster.Backup, pgcluster.Options) (*pgcluster.Restored, error),
	done func(r *pgcluster.Restored, err error, dir string)) {
	backup := sn.backup
	s.background("restore "+kind+" "+id, func(ctx context.Context) {
		dir, err := s.subDir(kind, id)
		var r *pgcluster.Restored
		if err == nil {
			r, err = restore(ctx, backup, pgcluster.Options{Name: kind, BaseDir: dir, Logf: s.logf})
		}
		s.mu.Lock()
		sn.users--
		done(r, err, dir)
		s.mu.Unlock()
		if err != nil {
			s.log.Error("restore failed", "kind", kind, "id", id, "error", err)
		} else {
			s.log.Info("restored", "kind", kind, "id", id, "port", r.Port, "consistent", r.ConsistentLSN.String(), "ownStart", r.OwnStartLSN.String())
		}
	})
}
