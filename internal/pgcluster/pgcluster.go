// Package pgcluster runs throwaway PostgreSQL clusters on 127.0.0.1: the local
// stand-ins for an RDS instance, its snapshot, an RDS restore and an Aurora
// restore. The rehearsal uses it as much as the tests do.
//
// PostgreSQL refuses to run as root, so when this process is root every
// server binary runs as a non-root OS user (postgres by default) through
// runuser, and the cluster's files belong to that user.
package pgcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the bootstrap superuser of every cluster made here.
const Superuser = "postgres"

// Options shape a new cluster.
type Options struct {
	// Name labels the cluster in logs and directory names ("source", "aurora").
	Name string
	// BaseDir is where the cluster's directory is made; os.TempDir() if empty.
	BaseDir string
	// Settings are extra postgresql.conf settings; they override the defaults.
	Settings map[string]string
	// Logf, if set, receives one line per action.
	Logf func(format string, args ...any)
}

// Cluster is one running (or stopped) PostgreSQL cluster.
type Cluster struct {
	Name     string
	Dir      string // the cluster's own directory: data/, sock/, log
	Port     int
	Password string // the superuser's password (scram-sha-256 over TCP)

	opts    Options
	mu      sync.Mutex
	running bool
}

// DataDir is the cluster's PGDATA.
func (c *Cluster) DataDir() string { return filepath.Join(c.Dir, "data") }

// SocketDir holds the cluster's Unix socket.
func (c *Cluster) SocketDir() string { return filepath.Join(c.Dir, "sock") }

// LogFile is the server log.
func (c *Cluster) LogFile() string { return filepath.Join(c.Dir, "server.log") }

// DSN is a TCP connection string for the superuser to database db. It holds
// the local throwaway password: use it only for local clusters.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Password, c.Port, db)
}

// Connect opens a superuser connection to database db.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.DSN(db))
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf("[%s] "+format, append([]any{c.Name}, args...)...)
	}
}

// ---------------------------------------------------------------- binaries

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// BinDir finds PostgreSQL's server binaries: $SEEDREPL_PG_BINDIR, then
// `pg_config --bindir`, then the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	binOnce.Do(func() { binDir, binErr = findBinDir() })
	return binDir, binErr
}

func findBinDir() (string, error) {
	var candidates []string
	if d := os.Getenv("SEEDREPL_PG_BINDIR"); d != "" {
		candidates = append(candidates, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(globbed, func(i, j int) bool { return versionOf(globbed[i]) > versionOf(globbed[j]) })
	candidates = append(candidates, globbed...)
	need := []string{"initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_resetwal", "pg_controldata", "pgbench"}
	for _, d := range candidates {
		ok := true
		for _, b := range need {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (%s) not found in %v: install them "+
		"(Debian/Ubuntu: `apt-get update && apt-get install -y postgresql`) or set SEEDREPL_PG_BINDIR "+
		"to the directory that holds initdb", strings.Join(need, ", "), candidates)
}

func versionOf(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// osUser is who runs the server: the current user, or, for root, $SEEDREPL_PG_USER or postgres.
type osUser struct {
	name     string
	uid, gid int
	viaRoot  bool
}

var (
	userOnce sync.Once
	runAs    osUser
	runAsErr error
)

func serverUser() (osUser, error) {
	userOnce.Do(func() {
		if os.Geteuid() != 0 {
			runAs = osUser{uid: os.Geteuid(), gid: os.Getegid()}
			return
		}
		name := os.Getenv("SEEDREPL_PG_USER")
		if name == "" {
			name = "postgres"
		}
		u, err := user.Lookup(name)
		if err != nil {
			runAsErr = fmt.Errorf("running as root, and PostgreSQL refuses root: need the OS user %q to run the "+
				"clusters (create it: `useradd --system --create-home %s`, or set SEEDREPL_PG_USER): %w", name, name, err)
			return
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			runAsErr = fmt.Errorf("running as root needs runuser (package util-linux) to start PostgreSQL as %q: %w", name, err)
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		runAs = osUser{name: name, uid: uid, gid: gid, viaRoot: true}
	})
	return runAs, runAsErr
}

// run runs a PostgreSQL binary as the server user and returns its combined output.
func run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	return runEnv(ctx, nil, bin, args...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// mkdirOwned makes a directory that the server user owns.
func mkdirOwned(path string, mode os.FileMode) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	u, err := serverUser()
	if err != nil {
		return err
	}
	if u.viaRoot {
		return os.Chown(path, u.uid, u.gid)
	}
	return nil
}

// ---------------------------------------------------------------- lifecycle

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newClusterDir(opts Options) (*Cluster, error) {
	if _, err := BinDir(); err != nil {
		return nil, err
	}
	if _, err := serverUser(); err != nil {
		return nil, err
	}
	base := opts.BaseDir
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = "pg"
	}
	dir, err := os.MkdirTemp(base, "seedrepl-"+name+"-")
	if err != nil {
		return nil, err
	}
	// The server user must be able to enter every parent; MkdirTemp makes 0700.
	if err := mkdirOwned(dir, 0o755); err != nil {
		return nil, err
	}
	if err := mkdirOwned(filepath.Join(dir, "sock"), 0o755); err != nil {
		return nil, err
	}
	return &Cluster{Name: name, Dir: dir, opts: opts}, nil
}

// Init makes a new cluster with initdb and starts it.
func Init(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := newClusterDir(opts)
	if err != nil {
		return nil, err
	}
	c.Password = randomPassword()
	pwfile := filepath.Join(c.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if u, _ := serverUser(); u.viaRoot {
		_ = os.Chown(pwfile, u.uid, u.gid)
	}
	c.logf("initdb in %s", c.DataDir())
	if _, err := run(ctx, "initdb", "-D", c.DataDir(), "-U", Superuser, "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		_ = os.RemoveAll(c.Dir)
		return nil, err
	}
	_ = os.Remove(pwfile)
	if err := c.appendHBA(); err != nil {
		return nil, err
	}
	if err := c.writeConf(defaultSettings(), opts.Settings); err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Remove()
		return nil, err
	}
	return c, nil
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "local-" + hex.EncodeToString(b)
}

func defaultSettings() map[string]string {
	return map[string]string{
		"listen_addresses":                    "'127.0.0.1'",
		"wal_level":                           "logical",
		"max_replication_slots":               "20",
		"max_wal_senders":                     "20",
		"max_logical_replication_workers":     "8",
		"max_worker_processes":                "16",
		"max_connections":                     "60",
		"shared_buffers":                      "32MB",
		"fsync":                               "off", // throwaway clusters: speed over durability
		"synchronous_commit":                  "off",
		"full_page_writes":                    "on", // pg_basebackup needs it
		"wal_sender_timeout":                  "60s",
		"wal_receiver_status_interval":        "1s",
		"logging_collector":                   "off",
		"log_min_messages":                    "warning",
		"log_line_prefix":                     "'%m [%p] '",
		"password_encryption":                 "'scram-sha-256'",
		"max_slot_wal_keep_size":              "-1",
		"checkpoint_timeout":                  "5min",
		"track_commit_timestamp":              "off",
		"idle_in_transaction_session_timeout": "0",
	}
}

func (c *Cluster) appendHBA() error {
	f, err := os.OpenFile(filepath.Join(c.DataDir(), "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString("\n# seedrepl: replication connections over TCP\nhost replication all 127.0.0.1/32 scram-sha-256\n")
	return err
}

// writeConf appends settings to postgresql.auto.conf-like include; later lines win.
func (c *Cluster) writeConf(layers ...map[string]string) error {
	merged := map[string]string{}
	for _, l := range layers {
		for k, v := range l {
			merged[k] = v
		}
	}
	if c.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		c.Port = p
	}
	merged["port"] = strconv.Itoa(c.Port)
	merged["unix_socket_directories"] = "'" + c.SocketDir() + "'"
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# seedrepl local cluster settings\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, merged[k])
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(b.String())
	return err
}

// SetConf appends settings to postgresql.conf; they take effect at the next start or reload.
func (c *Cluster) SetConf(settings map[string]string) error {
	return c.writeConf(settings)
}

// Start starts the server and waits until it accepts connections. If the
// port was taken meanwhile, it retries on a new port.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		_, err := run(ctx, "pg_ctl", "-D", c.DataDir(), "-l", c.LogFile(), "-w", "-t", "120", "start")
		if err == nil {
			c.running = true
			c.logf("started on 127.0.0.1:%d", c.Port)
			return nil
		}
		lastErr = fmt.Errorf("%w\nserver log:\n%s", err, c.logTail())
		if !strings.Contains(c.logTail(), "could not bind") && !strings.Contains(c.logTail(), "Address already in use") {
			break
		}
		c.Port = 0
		if err := c.writeConf(); err != nil {
			return err
		}
	}
	return lastErr
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(c.LogFile())
	return tail(string(b), 3000)
}

// Stop stops the server (fast shutdown: a clean checkpoint).
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := os.Stat(filepath.Join(c.DataDir(), "postmaster.pid")); err != nil {
		c.running = false
		return nil
	}
	if _, err := run(ctx, "pg_ctl", "-D", c.DataDir(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		if _, err2 := run(context.Background(), "pg_ctl", "-D", c.DataDir(), "-m", "immediate", "-w", "stop"); err2 != nil {
			return fmt.Errorf("stop %s: %w (immediate: %v)", c.Name, err, err2)
		}
	}
	c.running = false
	c.logf("stopped")
	return nil
}

// Restart stops and starts the server.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.Stop(ctx); err != nil {
		return err
	}
	return c.Start(ctx)
}

// Remove stops the server if it runs and deletes the cluster's directory.
func (c *Cluster) Remove() error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	stopErr := c.Stop(ctx)
	if err := os.RemoveAll(c.Dir); err != nil {
		return errors.Join(stopErr, err)
	}
	c.logf("removed %s", c.Dir)
	return stopErr
}

// Cleanup is what tests register: `t.Cleanup(c.CleanupFunc(t))`.
type testingT interface {
	Helper()
	Logf(string, ...any)
	Errorf(string, ...any)
	Failed() bool
}

// CleanupFunc returns a function that removes the cluster and, if the test
// failed, first logs the tail of the server log.
func (c *Cluster) CleanupFunc(t testingT) func() {
	return func() {
		if t.Failed() {
			t.Logf("server log of %s:\n%s", c.Name, c.logTail())
		}
		if err := c.Remove(); err != nil {
			t.Errorf("remove cluster %s: %v", c.Name, err)
		}
	}
}

func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = "/"
	return cmd
}

// Pgbench runs pgbench against database db of the cluster (over its socket).
func (c *Cluster) Pgbench(ctx context.Context, db string, args ...string) ([]byte, error) {
	full := append([]string{"-h", c.SocketDir(), "-p", strconv.Itoa(c.Port), "-U", Superuser}, args...)
	return run(ctx, "pgbench", append(full, db)...)
}
