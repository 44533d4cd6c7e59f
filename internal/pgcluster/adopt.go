package pgcluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seedrepl/seedrepl/internal/lsn"
)

// External is a running cluster this program did not make, known only by a
// connection string (an adopted source). Nothing here touches its data
// directory: backups are taken over the network with pg_basebackup.
type External struct {
	ConnString string
	Host       string
	Port       int
	User       string
	Password   string
	Database   string
}

// Adopt parses a connection string (postgres://user[:password]@127.0.0.1:PORT/db
// or key=value form; a password may also come from PGPASSWORD or ~/.pgpass) and
// checks that the cluster answers.
func Adopt(ctx context.Context, connString string) (*External, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("adopt: %w", err)
	}
	if cfg.Host == "" || strings.HasPrefix(cfg.Host, "/") {
		return nil, fmt.Errorf("adopt: %q: need a TCP host (a local cloud instance has a TCP endpoint)", cfg.Host)
	}
	e := &External{ConnString: connString, Host: cfg.Host, Port: int(cfg.Port), User: cfg.User,
		Password: cfg.Password, Database: cfg.Database}
	conn, err := e.Connect(ctx, e.Database)
	if err != nil {
		return nil, fmt.Errorf("adopt %s:%d: %w", e.Host, e.Port, err)
	}
	conn.Close(ctx)
	return e, nil
}

// Connect opens a connection to database db ("" = the connection string's).
func (e *External) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(e.ConnString)
	if err != nil {
		return nil, err
	}
	if db != "" {
		cfg.Database = db
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// DSN is a URL connection string to database db with the adopted credentials.
func (e *External) DSN(db string) string {
	u := url.UserPassword(e.User, e.Password)
	if e.Password == "" {
		u = url.User(e.User)
	}
	return (&url.URL{Scheme: "postgres", User: u, Host: net.JoinHostPort(e.Host, strconv.Itoa(e.Port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}).String()
}

// BaseBackup takes a streaming base backup of the external cluster into a new
// directory under dir, like (*Cluster).BaseBackup, and prepares the copy to
// start as a local cluster:
//   - postgresql.conf is created when the source keeps it outside its data
//     directory (Debian does);
//   - pg_hba.conf is replaced: local socket trust; TCP from 127.0.0.1 by
//     scram-sha-256 when the adopting user is postgres with a password (the
//     copy keeps the source's roles, so that password works), else trust.
//
// The copies (RestoreRDS, RestoreAurora) connect as the role postgres, which
// must exist in the adopted cluster.
func (e *External) BaseBackup(ctx context.Context, dir string) (*Backup, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	parent, err := os.MkdirTemp(dir, "seedrepl-backup-")
	if err != nil {
		return nil, err
	}
	if err := mkdirOwned(parent, 0o755); err != nil {
		return nil, err
	}
	dest := filepath.Join(parent, "data")
	taken := time.Now().UTC()
	// The password goes through the environment, not the command line.
	out, err := runEnv(ctx, []string{"PGPASSWORD=" + e.Password}, "pg_basebackup",
		"-h", e.Host, "-p", strconv.Itoa(e.Port), "-U", e.User, "-w",
		"-D", dest, "-X", "stream", "-c", "fast", "-v", "--no-sync")
	if err != nil {
		_ = os.RemoveAll(parent)
		return nil, err
	}
	b := &Backup{Dir: dest, TakenAt: taken, Password: e.Password}
	if m := reStart.FindSubmatch(out); m != nil {
		if b.StartLSN, err = lsn.Parse(string(m[1])); err != nil {
			return nil, err
		}
	}
	m := reEnd.FindSubmatch(out)
	if m == nil {
		_ = os.RemoveAll(parent)
		return nil, fmt.Errorf("pg_basebackup did not print its end point:\n%s", out)
	}
	if b.EndLSN, err = lsn.Parse(string(m[1])); err != nil {
		return nil, err
	}
	if err := e.prepareCopy(dest); err != nil {
		_ = os.RemoveAll(parent)
		return nil, err
	}
	return b, nil
}

func (e *External) prepareCopy(data string) error {
	u, err := serverUser()
	if err != nil {
		return err
	}
	write := func(name, content string, appendOnly bool) error {
		path := filepath.Join(data, name)
		flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
		if appendOnly {
			flags = os.O_CREATE | os.O_WRONLY | os.O_APPEND
		}
		f, err := os.OpenFile(path, flags, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(content); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if u.viaRoot {
			return os.Chown(path, u.uid, u.gid)
		}
		return nil
	}
	// Debian keeps postgresql.conf outside the data directory: give the copy one.
	if _, err := os.Stat(filepath.Join(data, "postgresql.conf")); err != nil {
		if err := write("postgresql.conf", "# seedrepl: adopted copy\n", false); err != nil {
			return err
		}
	}
	tcp := "trust"
	if e.User == Superuser && e.Password != "" {
		tcp = "scram-sha-256"
	}
	hba := "# seedrepl: adopted copy (the source's pg_hba.conf is not copied)\n" +
		"local all all trust\n" +
		"host all all 127.0.0.1/32 " + tcp + "\n" +
		"host replication all 127.0.0.1/32 " + tcp + "\n"
	if err := write("pg_hba.conf", hba, false); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(data, "pg_ident.conf")); err != nil {
		return write("pg_ident.conf", "", false)
	}
	return nil
}

// runEnv is run with extra environment variables.
func runEnv(ctx context.Context, env []string, bin string, args ...string) ([]byte, error) {
	dir, err := BinDir()
	if err != nil {
		return nil, err
	}
	u, err := serverUser()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, bin)
	var cmd *exec.Cmd
	if u.viaRoot {
		// runuser keeps the environment (bar HOME, SHELL, USER, LOGNAME).
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", u.name, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "TZ=UTC"), env...)
	cmd.Dir = "/"
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, tail(out.String(), 2000))
	}
	return out.Bytes(), nil
}

// Sweep stops a cluster left in dir (a directory made by Init or a restore,
// holding data/) by a process that died, then deletes dir. It is for the
// cleanup of leftovers; the caller decides that dir is really a leftover.
func Sweep(dir string) error {
	c := &Cluster{Name: filepath.Base(dir), Dir: dir}
	return c.Remove()
}
