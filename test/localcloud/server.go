// Package localcloud is the local stand-in for AWS used by the tests and the
// rehearsal: one HTTP server on 127.0.0.1 that speaks the wire protocols of
// RDS (Query/XML), DMS and Secrets Manager (JSON 1.1), so the Lambdas' real
// aws-sdk-go-v2 clients work against it unchanged, with real PostgreSQL
// clusters behind it (package pgcluster):
//
//   - an RDS instance is a local cluster (a registered or adopted source, or
//     a restore of a snapshot);
//   - a snapshot is a pg_basebackup of the instance's cluster;
//   - RestoreDBInstanceFromDBSnapshot is pgcluster.RestoreRDS (offers
//     rds_tools.logical_seed_lsn()); RestoreDBClusterFromSnapshot is
//     pgcluster.RestoreAurora (offers aurora_volume_logical_start_lsn());
//     instances created in a cluster share its PostgreSQL;
//   - a running DMS CDC task is an applier that streams the source slot with
//     test_decoding and applies each transaction on the target.
//
// Resources move through AWS's statuses (creating → available, …) after
// configurable delays, so poll loops run. Start one with New; register the
// source with AddSourceInstance or AdoptSourceInstance and its secret with
// PutSecret; point the SDK at URL() (Env() gives the variables); Close removes
// everything it made.
package localcloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

const (
	// Region and Account appear in every ARN.
	Region  = "us-east-1"
	Account = "000000000000"
)

// Delays are how long resources stay in their transitional statuses. The
// real work (backup, restore) runs in the background meanwhile; a resource is
// available when both its delay has passed and the work is done.
type Delays struct {
	Snapshot            time.Duration // CreateDBSnapshot: creating → available
	ClusterRestore      time.Duration // RestoreDBClusterFromSnapshot: creating → available
	Instance            time.Duration // CreateDBInstance in a cluster: creating → available
	TempRestore         time.Duration // RestoreDBInstanceFromDBSnapshot: creating → available
	Upgrade             time.Duration // ModifyDBCluster EngineVersion: upgrading → available
	Delete              time.Duration // deleting → gone (every kind)
	ReplicationInstance time.Duration // DMS replication instance: creating → available
	Task                time.Duration // DMS task: creating → ready, starting → running, stopping → stopped
}

// FastDelays suit tests: every status moves within a second.
func FastDelays() Delays {
	d := 300 * time.Millisecond
	return Delays{Snapshot: d, ClusterRestore: d, Instance: d, TempRestore: d, Upgrade: d, Delete: d,
		ReplicationInstance: d, Task: d}
}

// RehearsalDelays make poll loops take a few rounds without making a
// rehearsal slow.
func RehearsalDelays() Delays {
	return Delays{Snapshot: 5 * time.Second, ClusterRestore: 8 * time.Second, Instance: 5 * time.Second,
		TempRestore: 5 * time.Second, Upgrade: 6 * time.Second, Delete: 2 * time.Second,
		ReplicationInstance: 3 * time.Second, Task: 2 * time.Second}
}

// Options configure a Server.
type Options struct {
	// Addr to listen on; "127.0.0.1:0" (a free port) if empty.
	Addr string
	// BaseDir holds every cluster and backup the server makes, one
	// subdirectory each. If empty, a new temporary directory is made and
	// deleted by Close.
	BaseDir string
	// StateDir, if set, receives localcloud.json: the address, the pid and
	// every directory made, written as each is made, for Sweep.
	StateDir string
	Delays   Delays
	// Logger receives one line per request and per background action; a
	// discarding logger if nil.
	Logger *slog.Logger
}

// Server is the local cloud. Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	ln       net.Listener
	http     *http.Server
	baseDir  string
	ownsBase bool

	ctx    context.Context // cancelled by Close: background work stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // background work

	mu      sync.Mutex
	delays  Delays
	closed  bool
	faults  map[string][]fault
	secrets map[string]*secret // by ARN
	// RDS
	instances map[string]*dbInstance
	clusters  map[string]*dbCluster
	snapshots map[string]*dbSnapshot
	tags      map[string][]tag // by ARN
	// DMS
	endpoints    map[string]*dmsEndpoint // by ARN
	replInstance map[string]*replInstance
	tasks        map[string]*replTask
	// state file
	stateDirs []stateEntry
	started   time.Time
	ready     bool
	info      map[string]any
}

const maxBaseDirLen = 107 - len("/x-1234567890/seedrepl-aurora-1234567890/sock/.s.PGSQL.65535")

type fault struct {
	code  string
	times int
}

// New starts a server on 127.0.0.1.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{opts: opts, log: log, delays: opts.Delays, started: time.Now().UTC(),
		faults: map[string][]fault{}, secrets: map[string]*secret{},
		instances: map[string]*dbInstance{}, clusters: map[string]*dbCluster{}, snapshots: map[string]*dbSnapshot{},
		tags: map[string][]tag{}, endpoints: map[string]*dmsEndpoint{}, replInstance: map[string]*replInstance{},
		tasks: map[string]*replTask{}}
	if opts.BaseDir == "" {
		d, err := os.MkdirTemp("", "seedrepl-localcloud-")
		if err != nil {
			return nil, err
		}
		s.baseDir, s.ownsBase = d, true
	} else {
		abs, err := filepath.Abs(opts.BaseDir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, err
		}
		s.baseDir = abs
	}
	// <base>/x-NNNNNNNNNN/seedrepl-aurora-NNNNNNNNNN/sock/.s.PGSQL.NNNNN must
	// fit in a Unix socket path (107 bytes).
	if len(s.baseDir) > maxBaseDirLen {
		if s.ownsBase {
			_ = os.RemoveAll(s.baseDir)
		}
		return nil, fmt.Errorf("local cloud base dir %s is too long (%d bytes, at most %d): PostgreSQL's Unix socket paths "+
			"under it would pass 107 bytes; choose a shorter BaseDir or TMPDIR", s.baseDir, len(s.baseDir), maxBaseDirLen)
	}
	// The PostgreSQL OS user must be able to enter the base directory.
	if err := os.Chmod(s.baseDir, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		if s.ownsBase {
			_ = os.RemoveAll(s.baseDir)
		}
		return nil, err
	}
	s.ln = ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	s.mu.Lock()
	err = s.writeStateLocked()
	s.mu.Unlock()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	s.log.Info("local cloud listening", "url", s.URL(), "baseDir", s.baseDir)
	return s, nil
}

// URL is the endpoint for every service, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// BaseDir is where the server's clusters and backups live.
func (s *Server) BaseDir() string { return s.baseDir }

// Env is the environment that points the SDK's clients at this server.
func (s *Server) Env() []string {
	u := s.URL()
	return []string{
		"AWS_ENDPOINT_URL_RDS=" + u,
		"AWS_ENDPOINT_URL_DATABASE_MIGRATION_SERVICE=" + u,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + u,
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetDelays changes the delays for resources created from now on.
func (s *Server) SetDelays(d Delays) {
	s.mu.Lock()
	s.delays = d
	s.mu.Unlock()
}

// InjectFault makes the next `times` calls of action (an RDS Action such as
// "CreateDBSnapshot", or a DMS/Secrets Manager operation such as
// "StartReplicationTask") fail with the error code, e.g. "Throttling",
// "ThrottlingException", "InternalFailure". Faults queue per action.
func (s *Server) InjectFault(action, code string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if times > 0 {
		s.faults[action] = append(s.faults[action], fault{code: code, times: times})
	}
}

// PendingFaults is how many injected failures of action are still to come.
func (s *Server) PendingFaults(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults[action] {
		n += f.times
	}
	return n
}

// ClearFaults drops every injected failure not yet served.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]fault{}
}

func (s *Server) takeFault(action string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[action]
	if len(q) == 0 {
		return "", false
	}
	code := q[0].code
	q[0].times--
	if q[0].times <= 0 {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(s.faults, action)
	} else {
		s.faults[action] = q
	}
	return code, true
}

// faultStatus is the HTTP status AWS uses for an error code.
func faultStatus(code string) int {
	switch {
	case strings.Contains(code, "NotFound"):
		return http.StatusNotFound
	case code == "InternalFailure" || code == "InternalServerError" || code == "InternalServiceError":
		return http.StatusInternalServerError
	case code == "ServiceUnavailable":
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// ServeHTTP routes a request by protocol: JSON 1.1 by X-Amz-Target, else RDS Query.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "local cloud: POST only", http.StatusMethodNotAllowed)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, "AmazonDMSv20160101."):
		s.serveJSON(w, r, "dms", strings.TrimPrefix(target, "AmazonDMSv20160101."), s.dmsHandlers())
	case strings.HasPrefix(target, "secretsmanager."):
		s.serveJSON(w, r, "secretsmanager", strings.TrimPrefix(target, "secretsmanager."), s.secretsHandlers())
	case target != "":
		writeJSONError(w, http.StatusBadRequest, "UnknownOperationException", "local cloud: unknown target "+target)
	default:
		s.serveRDS(w, r)
	}
}

// Close stops every applier, removes every cluster and backup the server
// made (never a registered or adopted source) and stops serving.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var tasks []*replTask
	for _, t := range s.tasks {
		tasks = append(tasks, t)
	}
	s.mu.Unlock()

	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = s.http.Shutdown(shut)
	cancel()
	for _, t := range tasks {
		t.stopApplier()
	}
	s.cancel()
	s.wg.Wait()

	var errs []error
	s.mu.Lock()
	var removers []func() error
	for _, i := range s.instances {
		if i.restored != nil {
			removers = append(removers, i.restored.Remove)
			i.restored = nil
		}
	}
	for _, c := range s.clusters {
		if c.restored != nil {
			removers = append(removers, c.restored.Remove)
			c.restored = nil
		}
	}
	for _, sn := range s.snapshots {
		if sn.backup != nil {
			removers = append(removers, sn.backup.Remove)
			sn.backup = nil
		}
	}
	entries := s.stateDirs
	s.mu.Unlock()
	for _, f := range removers {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	// Whatever a failed or interrupted restore left behind.
	for _, e := range entries {
		if err := sweepEntry(s.baseDir, e); err != nil {
			errs = append(errs, err)
		}
	}
	if s.ownsBase {
		if err := os.RemoveAll(s.baseDir); err != nil {
			errs = append(errs, err)
		}
	}
	if s.opts.StateDir != "" {
		if err := os.Remove(statePath(s.opts.StateDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.log.Info("local cloud closed")
	return errors.Join(errs...)
}

// background runs f on the server's context unless the server is closing.
func (s *Server) background(name string, f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("background panic", "job", name, "panic", fmt.Sprint(p))
			}
		}()
		f(s.ctx)
	}()
}

// sleepCtx waits d or until ctx ends; false if ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomSuffix(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// subDir makes (and records in the state file) a directory under the base
// dir for one resource's cluster or backup.
func (s *Server) subDir(kind, id string) (string, error) {
	// Short names: PostgreSQL's Unix socket path (inside the cluster's
	// directory) must fit in 107 bytes; the id is in the state file.
	dir, err := os.MkdirTemp(s.baseDir, kind[:1]+"-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stateDirs = append(s.stateDirs, stateEntry{Kind: kind, ID: id, Dir: dir})
	return dir, s.writeStateLocked()
}

// forgetDir drops a removed directory from the state file.
func (s *Server) forgetDirLocked(dir string) {
	out := s.stateDirs[:0]
	for _, e := range s.stateDirs {
		if e.Dir != dir {
			out = append(out, e)
		}
	}
	s.stateDirs = out
	_ = s.writeStateLocked()
}
