package localcloud

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

type dmsEndpoint struct {
	id, arn      string
	typ          string // source, target
	engine       string
	server, user string
	password     string
	db, sslMode  string
	port         int
	pg           map[string]any // PostgreSQLSettings as given (Password removed when rendered)
	created      time.Time
	deleting     bool
}

type replInstance struct {
	id, arn  string
	class    string
	created  time.Time
	readyAt  time.Time
	deleting bool
}

type replTask struct {
	id, arn                     string
	sourceArn, targetArn, riArn string
	migrationType               string
	tableMappings, settings     string
	cdcStart, cdcStop           string
	created                     time.Time
	status                      string
	until                       time.Time
	startDate, stopDate         time.Time
	stopReason, lastFailure     string
	appl                        *applier
	stopped                     bool // the applier has ended after a stop
	last                        TaskCounters
}

func dmsARN(kind string) string {
	return "arn:aws:dms:" + Region + ":" + Account + ":" + kind + ":" + strings.ToUpper(randomSuffix(26))
}

var dmsIDRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,254}$`)

func dmsIdentifier(param, v string) (string, *apiError) {
	if !dmsIDRE.MatchString(v) || strings.Contains(v, "--") || strings.HasSuffix(v, "-") {
		return "", badRequest("InvalidParameterValueException", "%s %q must start with a letter, contain only ASCII letters, digits and hyphens, and not end with a hyphen or contain two consecutive hyphens", param, v)
	}
	return strings.ToLower(v), nil
}

func dmsNotFound(format string, args ...any) *apiError {
	return badRequest("ResourceNotFoundFault", format, args...)
}

func dmsBadState(format string, args ...any) *apiError {
	return badRequest("InvalidResourceStateFault", format, args...)
}

func (s *Server) dmsHandlers() map[string]jsonHandler {
	return map[string]jsonHandler{
		"CreateEndpoint":               s.createEndpoint,
		"DescribeEndpoints":            s.describeEndpoints,
		"DeleteEndpoint":               s.deleteEndpoint,
		"CreateReplicationInstance":    s.createReplicationInstance,
		"DescribeReplicationInstances": s.describeReplicationInstances,
		"DeleteReplicationInstance":    s.deleteReplicationInstance,
		"CreateReplicationTask":        s.createReplicationTask,
		"DescribeReplicationTasks":     s.describeReplicationTasks,
		"StartReplicationTask":         s.startReplicationTask,
		"StopReplicationTask":          s.stopReplicationTask,
		"DeleteReplicationTask":        s.deleteReplicationTask,
		"DescribeTableStatistics":      s.describeTableStatistics,
	}
}

// ---------------------------------------------------------------- endpoints

func (s *Server) createEndpoint(in map[string]any) (any, *apiError) {
	id, e := dmsIdentifier("EndpointIdentifier", jstr(in, "EndpointIdentifier"))
	if e != nil {
		return nil, e
	}
	typ := strings.ToLower(jstr(in, "EndpointType"))
	if typ != "source" && typ != "target" {
		return nil, badRequest("InvalidParameterValueException", "EndpointType must be source or target")
	}
	engine := jstr(in, "EngineName")
	if engine != "postgres" && engine != "aurora-postgresql" {
		return nil, badRequest("InvalidParameterValueException", "local cloud: EngineName %q is not supported (postgres, aurora-postgresql)", engine)
	}
	pg := jobj(in, "PostgreSQLSettings")
	if pg == nil {
		pg = map[string]any{}
	}
	ep := &dmsEndpoint{id: id, arn: dmsARN("endpoint"), typ: typ, engine: engine, created: time.Now(), pg: pg,
		server: orDefault(jstr(in, "ServerName"), jstr(pg, "ServerName")),
		user:   orDefault(jstr(in, "Username"), jstr(pg, "Username")), password: orDefault(jstr(in, "Password"), jstr(pg, "Password")),
		db: orDefault(jstr(in, "DatabaseName"), jstr(pg, "DatabaseName")), sslMode: orDefault(jstr(in, "SslMode"), "none"),
		port: jint(in, "Port")}
	if ep.port == 0 {
		ep.port = jint(pg, "Port")
	}
	if jstr(pg, "SecretsManagerSecretId") != "" {
		if jstr(pg, "SecretsManagerAccessRoleArn") == "" {
			return nil, badRequest("InvalidParameterValueException", "SecretsManagerAccessRoleArn is required with SecretsManagerSecretId")
		}
	} else if ep.server == "" || ep.port == 0 || ep.user == "" {
		return nil, badRequest("InvalidParameterValueException", "ServerName, Port and Username (or SecretsManagerSecretId) are required")
	}
	if p := jstr(pg, "PluginName"); p != "" && p != "test-decoding" && p != "no-preference" && p != "pglogical" {
		return nil, badRequest("InvalidParameterValueException", "PluginName %q is not valid", p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.endpoints {
		if o.id == id {
			return nil, badRequest("ResourceAlreadyExistsFault", "The specified endpoint %s already exists", id)
		}
	}
	s.endpoints[ep.arn] = ep
	return map[string]any{"Endpoint": renderEndpoint(ep)}, nil
}

func renderEndpoint(ep *dmsEndpoint) map[string]any {
	pg := map[string]any{}
	for k, v := range ep.pg {
		if k != "Password" {
			pg[k] = v
		}
	}
	status := "active"
	if ep.deleting {
		status = "deleting"
	}
	out := map[string]any{"EndpointIdentifier": ep.id, "EndpointArn": ep.arn, "EndpointType": strings.ToUpper(ep.typ),
		"EngineName": ep.engine, "EngineDisplayName": "PostgreSQL", "Status": status, "SslMode": ep.sslMode,
		"PostgreSQLSettings": pg}
	if ep.server != "" {
		out["ServerName"] = ep.server
	}
	if ep.port != 0 {
		out["Port"] = ep.port
	}
	if ep.user != "" {
		out["Username"] = ep.user
	}
	if ep.db != "" {
		out["DatabaseName"] = ep.db
	}
	return out
}

func (s *Server) describeEndpoints(in map[string]any) (any, *apiError) {
	fs := jfilters(in)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, arn := range sortedKeys(s.endpoints) {
		ep := s.endpoints[arn]
		if !jmatch(fs, "endpoint-arn", ep.arn) || !jmatch(fs, "endpoint-id", ep.id) ||
			!jmatch(fs, "endpoint-type", strings.ToUpper(ep.typ)) && !jmatch(fs, "endpoint-type", ep.typ) ||
			!jmatch(fs, "engine-name", ep.engine) {
			continue
		}
		out = append(out, renderEndpoint(ep))
	}
	if len(out) == 0 && len(fs) > 0 {
		return nil, dmsNotFound("No Endpoints found matching provided filters")
	}
	return map[string]any{"Endpoints": nonNil(out)}, nil
}

func (s *Server) deleteEndpoint(in map[string]any) (any, *apiError) {
	arn := jstr(in, "EndpointArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.endpoints[arn]
	if ep == nil {
		return nil, dmsNotFound("Endpoint %s not found", arn)
	}
	for _, t := range s.tasks {
		if t.sourceArn == arn || t.targetArn == arn {
			return nil, dmsBadState("Endpoint %s is used by replication task %s", ep.id, t.id)
		}
	}
	ep.deleting = true
	out := renderEndpoint(ep)
	delete(s.endpoints, arn)
	return map[string]any{"Endpoint": out}, nil
}

// ---------------------------------------------------------------- replication instances

func (s *Server) createReplicationInstance(in map[string]any) (any, *apiError) {
	id, e := dmsIdentifier("ReplicationInstanceIdentifier", jstr(in, "ReplicationInstanceIdentifier"))
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.replInstance {
		if o.id == id {
			return nil, badRequest("ResourceAlreadyExistsFault", "ReplicationInstance %s already exists", id)
		}
	}
	now := time.Now()
	ri := &replInstance{id: id, arn: dmsARN("rep"), class: orDefault(jstr(in, "ReplicationInstanceClass"), "dms.t3.medium"),
		created: now, readyAt: now.Add(s.delays.ReplicationInstance)}
	s.replInstance[ri.arn] = ri
	return map[string]any{"ReplicationInstance": renderReplInstance(ri, now)}, nil
}

func replInstanceStatus(ri *replInstance, now time.Time) string {
	switch {
	case ri.deleting:
		return "deleting"
	case now.Before(ri.readyAt):
		return "creating"
	}
	return "available"
}

func renderReplInstance(ri *replInstance, now time.Time) map[string]any {
	return map[string]any{"ReplicationInstanceIdentifier": ri.id, "ReplicationInstanceArn": ri.arn,
		"ReplicationInstanceClass": ri.class, "ReplicationInstanceStatus": replInstanceStatus(ri, now),
		"AllocatedStorage": 50, "EngineVersion": "3.5.3", "InstanceCreateTime": epoch(ri.created),
		"MultiAZ": false, "PubliclyAccessible": false, "AvailabilityZone": Region + "a",
		"ReplicationInstancePrivateIpAddresses": []string{"127.0.0.1"}}
}

func (s *Server) describeReplicationInstances(in map[string]any) (any, *apiError) {
	fs := jfilters(in)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []map[string]any
	for _, arn := range sortedKeys(s.replInstance) {
		ri := s.replInstance[arn]
		if !jmatch(fs, "replication-instance-arn", ri.arn) || !jmatch(fs, "replication-instance-id", ri.id) ||
			!jmatch(fs, "replication-instance-class", ri.class) {
			continue
		}
		out = append(out, renderReplInstance(ri, now))
	}
	if len(out) == 0 && len(fs) > 0 {
		return nil, dmsNotFound("No replication instances found matching provided filters")
	}
	return map[string]any{"ReplicationInstances": nonNil(out)}, nil
}

func (s *Server) deleteReplicationInstance(in map[string]any) (any, *apiError) {
	arn := jstr(in, "ReplicationInstanceArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	ri := s.replInstance[arn]
	if ri == nil {
		return nil, dmsNotFound("Replication instance %s not found", arn)
	}
	if ri.deleting {
		return nil, dmsBadState("Replication instance %s is already being deleted", ri.id)
	}
	for _, t := range s.tasks {
		if t.riArn == arn {
			return nil, dmsBadState("Replication instance %s has replication task %s; delete the task first", ri.id, t.id)
		}
	}
	ri.deleting = true
	out := renderReplInstance(ri, time.Now())
	delay := s.delays.Delete
	s.background("delete replication instance "+ri.id, func(ctx context.Context) {
		sleepCtx(ctx, delay)
		s.mu.Lock()
		delete(s.replInstance, arn)
		s.mu.Unlock()
	})
	return map[string]any{"ReplicationInstance": out}, nil
}

// ---------------------------------------------------------------- tasks

func (s *Server) createReplicationTask(in map[string]any) (any, *apiError) {
	id, e := dmsIdentifier("ReplicationTaskIdentifier", jstr(in, "ReplicationTaskIdentifier"))
	if e != nil {
		return nil, e
	}
	mt := jstr(in, "MigrationType")
	if mt != "cdc" {
		return nil, badRequest("InvalidParameterValueException", "local cloud: MigrationType %q is not supported (cdc only)", mt)
	}
	if _, err := ParseTableMappings(jstr(in, "TableMappings")); err != nil {
		return nil, badRequest("InvalidParameterValueException", "Invalid TableMappings: %v", err)
	}
	if p := jstr(in, "CdcStartPosition"); p != "" {
		if _, err := lsn.Parse(p); err != nil {
			return nil, badRequest("InvalidParameterValueException", "Invalid CdcStartPosition (local cloud: a PostgreSQL LSN X/Y): %v", err)
		}
	}
	if jstr(in, "CdcStartTime") != "" {
		return nil, badRequest("InvalidParameterValueException", "local cloud: CdcStartTime is not supported; use CdcStartPosition")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.tasks {
		if o.id == id {
			return nil, badRequest("ResourceAlreadyExistsFault", "Replication task %s already exists", id)
		}
	}
	src, tgt := s.endpoints[jstr(in, "SourceEndpointArn")], s.endpoints[jstr(in, "TargetEndpointArn")]
	if src == nil || tgt == nil {
		return nil, dmsNotFound("Endpoint not found: %s", map[bool]string{true: jstr(in, "SourceEndpointArn"), false: jstr(in, "TargetEndpointArn")}[src == nil])
	}
	if src.typ != "source" || tgt.typ != "target" {
		return nil, badRequest("InvalidParameterValueException", "SourceEndpointArn must be a source endpoint and TargetEndpointArn a target endpoint")
	}
	ri := s.replInstance[jstr(in, "ReplicationInstanceArn")]
	if ri == nil {
		return nil, dmsNotFound("Replication instance %s not found", jstr(in, "ReplicationInstanceArn"))
	}
	now := time.Now()
	t := &replTask{id: id, arn: dmsARN("task"), sourceArn: src.arn, targetArn: tgt.arn, riArn: ri.arn, migrationType: mt,
		tableMappings: jstr(in, "TableMappings"), settings: orDefault(jstr(in, "ReplicationTaskSettings"), "{}"),
		cdcStart: jstr(in, "CdcStartPosition"), cdcStop: jstr(in, "CdcStopPosition"), created: now,
		status: "creating", until: now.Add(s.delays.Task)}
	s.tasks[t.arn] = t
	return map[string]any{"ReplicationTask": s.renderTaskLocked(t, now, true)}, nil
}

// taskStatusLocked advances the timed transitions and reads the applier.
func (s *Server) taskStatusLocked(t *replTask, now time.Time) string {
	var started bool
	var failed error
	if t.appl != nil {
		started, failed, t.last = t.appl.snapshot()
	}
	switch t.status {
	case "creating":
		if !now.Before(t.until) {
			t.status = "ready"
		}
	case "starting", "running":
		if failed != nil {
			t.status, t.lastFailure, t.stopReason, t.stopDate = "failed", failed.Error(), "Stop Reason FATAL_ERROR", now
		} else if t.status == "starting" && started && !now.Before(t.until) {
			t.status = "running"
		}
	case "stopping":
		if t.stopped && !now.Before(t.until) {
			t.status = "stopped"
		}
	}
	return t.status
}

func (s *Server) renderTaskLocked(t *replTask, now time.Time, withSettings bool) map[string]any {
	status := s.taskStatusLocked(t, now)
	out := map[string]any{"ReplicationTaskIdentifier": t.id, "ReplicationTaskArn": t.arn, "SourceEndpointArn": t.sourceArn,
		"TargetEndpointArn": t.targetArn, "ReplicationInstanceArn": t.riArn, "MigrationType": t.migrationType,
		"TableMappings": t.tableMappings, "Status": status, "ReplicationTaskCreationDate": epoch(t.created)}
	if withSettings {
		out["ReplicationTaskSettings"] = t.settings
	}
	if t.cdcStart != "" {
		out["CdcStartPosition"] = t.cdcStart
	}
	if t.cdcStop != "" {
		out["CdcStopPosition"] = t.cdcStop
	}
	if t.stopReason != "" {
		out["StopReason"] = t.stopReason
	}
	if t.lastFailure != "" {
		out["LastFailureMessage"] = t.lastFailure
	}
	if !t.startDate.IsZero() {
		out["ReplicationTaskStartDate"] = epoch(t.startDate)
		end := now
		if !t.stopDate.IsZero() && (status == "stopped" || status == "failed") {
			end = t.stopDate
		}
		stats := map[string]any{"FullLoadProgressPercent": 100, "ElapsedTimeMillis": end.Sub(t.startDate).Milliseconds(),
			"TablesLoaded": len(t.last.Tables), "TablesLoading": 0, "TablesQueued": 0, "TablesErrored": 0,
			"StartDate": epoch(t.startDate), "FreshStartDate": epoch(t.startDate)}
		if status == "stopped" || status == "failed" {
			stats["StopDate"] = epoch(t.stopDate)
		}
		out["ReplicationTaskStats"] = stats
		if t.last.AppliedLSN != 0 {
			out["RecoveryCheckpoint"] = fmt.Sprintf("checkpoint:V1#%d#%s#0#0#*#0#0", t.last.Transactions, t.last.AppliedLSN)
		}
	}
	return out
}

func (s *Server) findTaskLocked(arn string) (*replTask, *apiError) {
	t := s.tasks[arn]
	if t == nil {
		return nil, dmsNotFound("Replication Task %s not found", arn)
	}
	return t, nil
}

func (s *Server) describeReplicationTasks(in map[string]any) (any, *apiError) {
	fs := jfilters(in)
	without, _ := in["WithoutSettings"].(bool)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	var out []map[string]any
	for _, arn := range sortedKeys(s.tasks) {
		t := s.tasks[arn]
		if !jmatch(fs, "replication-task-arn", t.arn) || !jmatch(fs, "replication-task-id", t.id) ||
			!jmatch(fs, "migration-type", t.migrationType) || !jmatch(fs, "replication-instance-arn", t.riArn) {
			continue
		}
		if !jmatch(fs, "endpoint-arn", t.sourceArn) && !jmatch(fs, "endpoint-arn", t.targetArn) {
			continue
		}
		out = append(out, s.renderTaskLocked(t, now, !without))
	}
	if len(out) == 0 && len(fs) > 0 {
		return nil, dmsNotFound("No Tasks found matching provided filters")
	}
	return map[string]any{"ReplicationTasks": nonNil(out)}, nil
}

func (s *Server) resolveEndpoint(ep *dmsEndpoint) (connInfo, error) {
	ci := connInfo{Host: ep.server, Port: ep.port, User: ep.user, Password: ep.password, DB: ep.db, SSLMode: ep.sslMode}
	if sid := jstr(ep.pg, "SecretsManagerSecretId"); sid != "" {
		sec, err := s.rdsSecret(sid)
		if err != nil {
			return ci, fmt.Errorf("endpoint %s: %w", ep.id, err)
		}
		ci.Host, ci.Port, ci.User, ci.Password = sec.Host, sec.Port, sec.Username, sec.Password
		if ci.DB == "" {
			ci.DB = sec.DBName
		}
	}
	if ci.DB == "" {
		return ci, fmt.Errorf("endpoint %s: no DatabaseName", ep.id)
	}
	return ci, nil
}

func (s *Server) startReplicationTask(in map[string]any) (any, *apiError) {
	arn := jstr(in, "ReplicationTaskArn")
	typ := orDefault(jstr(in, "StartReplicationTaskType"), "start-replication")
	switch typ {
	case "start-replication", "resume-processing", "reload-target":
	default:
		return nil, badRequest("InvalidParameterValueException", "StartReplicationTaskType %q is not valid", typ)
	}
	if p := jstr(in, "CdcStartPosition"); p != "" {
		if _, err := lsn.Parse(p); err != nil {
			return nil, badRequest("InvalidParameterValueException", "Invalid CdcStartPosition: %v", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	t, e := s.findTaskLocked(arn)
	if e != nil {
		return nil, e
	}
	switch st := s.taskStatusLocked(t, now); st {
	case "ready", "stopped", "failed":
	default:
		return nil, dmsBadState("Replication task %s is in the %s state and cannot be started", t.id, st)
	}
	if ri := s.replInstance[t.riArn]; ri == nil || replInstanceStatus(ri, now) != "available" {
		return nil, dmsBadState("The replication instance of task %s is not available", t.id)
	}
	src, tgt := s.endpoints[t.sourceArn], s.endpoints[t.targetArn]
	if p := jstr(in, "CdcStartPosition"); p != "" {
		t.cdcStart = p
	}
	start, _ := lsn.Parse(t.cdcStart) // checked on input; empty = the slot's confirmed_flush_lsn
	if typ == "resume-processing" && t.last.AppliedLSN > start {
		start = t.last.AppliedLSN
	}
	mappings, _ := ParseTableMappings(t.tableMappings)
	t.status, t.until, t.startDate, t.stopDate, t.stopReason, t.lastFailure, t.stopped = "starting", now.Add(s.delays.Task), now, time.Time{}, "", "", false
	srcCI, err1 := s.resolveEndpointUnlocked(src)
	tgtCI, err2 := s.resolveEndpointUnlocked(tgt)
	if err1 != nil || err2 != nil {
		msg := fmt.Sprint(firstErr(err1, err2))
		t.status, t.lastFailure, t.stopReason, t.stopDate = "failed", msg, "Stop Reason FATAL_ERROR", now
		return map[string]any{"ReplicationTask": s.renderTaskLocked(t, now, true)}, nil
	}
	slot := jstr(src.pg, "SlotName")
	if p := jstr(src.pg, "PluginName"); p == "pglogical" {
		t.status, t.lastFailure, t.stopReason, t.stopDate = "failed", "local cloud: only the test_decoding plugin is supported", "Stop Reason FATAL_ERROR", now
		return map[string]any{"ReplicationTask": s.renderTaskLocked(t, now, true)}, nil
	}
	if slot == "" {
		t.status, t.lastFailure, t.stopReason, t.stopDate = "failed", "local cloud: the source endpoint needs PostgreSQLSettings.SlotName", "Stop Reason FATAL_ERROR", now
		return map[string]any{"ReplicationTask": s.renderTaskLocked(t, now, true)}, nil
	}
	t.appl = startApplier(applierConfig{Source: srcCI, Target: tgtCI, Slot: slot, Start: start, Mappings: mappings,
		Log: s.log.With("task", t.id)})
	s.log.Info("task started", "task", t.id, "slot", slot, "start", start.String(), "type", typ)
	return map[string]any{"ReplicationTask": s.renderTaskLocked(t, now, true)}, nil
}

// resolveEndpointUnlocked resolves with s.mu held (the secret lookup takes
// the lock itself, so it is read here directly).
func (s *Server) resolveEndpointUnlocked(ep *dmsEndpoint) (connInfo, error) {
	s.mu.Unlock()
	defer s.mu.Lock()
	return s.resolveEndpoint(ep)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (s *Server) stopReplicationTask(in map[string]any) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	t, e := s.findTaskLocked(jstr(in, "ReplicationTaskArn"))
	if e != nil {
		return nil, e
	}
	if st := s.taskStatusLocked(t, now); st != "running" && st != "starting" {
		return nil, dmsBadState("Replication task %s is in the %s state and cannot be stopped", t.id, st)
	}
	t.status, t.until, t.stopReason, t.stopDate = "stopping", now.Add(s.delays.Task), "Stop Reason NORMAL", now
	appl := t.appl
	s.background("stop task "+t.id, func(context.Context) {
		appl.stop()
		s.mu.Lock()
		t.stopped = true
		_, _, t.last = appl.snapshot()
		s.mu.Unlock()
	})
	return map[string]any{"ReplicationTask": s.renderTaskLocked(t, now, true)}, nil
}

func (s *Server) deleteReplicationTask(in map[string]any) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	t, e := s.findTaskLocked(jstr(in, "ReplicationTaskArn"))
	if e != nil {
		return nil, e
	}
	switch st := s.taskStatusLocked(t, now); st {
	case "running", "starting", "stopping", "deleting":
		return nil, dmsBadState("Replication task %s is in the %s state; stop it before deleting it", t.id, st)
	}
	out := s.renderTaskLocked(t, now, true)
	out["Status"] = "deleting"
	t.status = "deleting"
	appl := t.appl
	delay := s.delays.Delete
	s.background("delete task "+t.id, func(ctx context.Context) {
		if appl != nil {
			appl.stop() // already ended (failed or stopped); makes sure
		}
		sleepCtx(ctx, delay)
		s.mu.Lock()
		delete(s.tasks, t.arn)
		s.mu.Unlock()
	})
	return map[string]any{"ReplicationTask": out}, nil
}

// stopApplier ends a task's applier (Close).
func (t *replTask) stopApplier() {
	if t.appl != nil {
		t.appl.stop()
	}
}

func (s *Server) describeTableStatistics(in map[string]any) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	t, e := s.findTaskLocked(jstr(in, "ReplicationTaskArn"))
	if e != nil {
		return nil, e
	}
	s.taskStatusLocked(t, now)
	names := make([]TableName, 0, len(t.last.Tables))
	for n := range t.last.Tables {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].String() < names[j].String() })
	var out []map[string]any
	for _, n := range names {
		c := t.last.Tables[n]
		out = append(out, map[string]any{"SchemaName": n.Schema, "TableName": n.Table, "Inserts": c.Inserts,
			"Updates": c.Updates, "Deletes": c.Deletes, "Ddls": c.Ddls, "AppliedInserts": c.AppliedInserts,
			"AppliedUpdates": c.AppliedUpdates, "AppliedDeletes": c.AppliedDeletes, "AppliedDdls": c.AppliedDdls,
			"FullLoadRows": 0, "TableState": "Table completed", "LastUpdateTime": epoch(c.LastUpdate),
			"ValidationState": "Not enabled"})
	}
	return map[string]any{"ReplicationTaskArn": t.arn, "TableStatistics": nonNil(out)}, nil
}

// TaskCounters reports a task's applier counters (by task ARN), including
// the changes skipped with DMS's keyless-table semantics.
func (s *Server) TaskCounters(taskArn string) (TaskCounters, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[taskArn]
	if t == nil {
		return TaskCounters{}, false
	}
	s.taskStatusLocked(t, time.Now())
	return t.last, true
}

func nonNil(v []map[string]any) []map[string]any {
	if v == nil {
		return []map[string]any{}
	}
	return v
}
