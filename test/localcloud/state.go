package localcloud

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seedrepl/seedrepl/internal/pgcluster"
)

// StateFileName is the file a server writes into Options.StateDir.
const StateFileName = "localcloud.json"

// State is the content of the state file.
type State struct {
	PID       int          `json:"pid"`
	Addr      string       `json:"addr"`
	URL       string       `json:"url"`
	BaseDir   string       `json:"baseDir"`
	OwnsBase  bool         `json:"ownsBaseDir"`
	StartedAt time.Time    `json:"startedAt"`
	Dirs      []stateEntry `json:"dirs"`
	// Ready is set by MarkReady once the program has registered its sources
	// and secrets; Info is what it chose to publish (secret ARNs, …).
	Ready bool           `json:"ready"`
	Info  map[string]any `json:"info,omitempty"`
}

type stateEntry struct {
	Kind string `json:"kind"` // snapshot, rds, aurora
	ID   string `json:"id"`
	Dir  string `json:"dir"`
}

func statePath(dir string) string { return filepath.Join(dir, StateFileName) }

func (s *Server) writeStateLocked() error {
	if s.opts.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.opts.StateDir, 0o755); err != nil {
		return err
	}
	st := State{PID: os.Getpid(), Addr: s.Addr(), URL: s.URL(), BaseDir: s.baseDir, OwnsBase: s.ownsBase,
		StartedAt: s.started, Dirs: s.stateDirs, Ready: s.ready, Info: s.info}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.opts.StateDir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(s.opts.StateDir))
}

// MarkReady records in the state file that the program has finished
// registering sources and secrets, with info for whoever reads the file.
func (s *Server) MarkReady(info map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready, s.info = true, info
	return s.writeStateLocked()
}

// ReadState reads the state file in dir.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	return &st, nil
}

// Sweep cleans up after a local cloud described by stateDir's state file: if
// its process still runs, it is sent SIGTERM (and given a minute to clean up
// itself); then every cluster directory it recorded is stopped and removed,
// and the base directory too if the server made it. A missing state file is
// not an error.
func Sweep(stateDir string) error {
	st, err := ReadState(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.PID > 0 && st.PID != os.Getpid() && isLocalCloudProcess(st.PID) {
		_ = syscall.Kill(st.PID, syscall.SIGTERM)
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) && syscall.Kill(st.PID, 0) == nil {
			time.Sleep(200 * time.Millisecond)
		}
		if syscall.Kill(st.PID, 0) == nil {
			return fmt.Errorf("local cloud pid %d did not exit after SIGTERM", st.PID)
		}
	}
	var errs []error
	for _, e := range st.Dirs {
		if err := sweepEntry(st.BaseDir, e); err != nil {
			errs = append(errs, err)
		}
	}
	if st.OwnsBase && st.BaseDir != "" && strings.Contains(filepath.Base(st.BaseDir), "seedrepl-localcloud-") {
		if err := sweepTree(st.BaseDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(statePath(stateDir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isLocalCloudProcess is a guard against signalling a recycled pid.
func isLocalCloudProcess(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return strings.Contains(string(b), "localcloud")
}

// sweepEntry stops every cluster under a recorded directory and removes it.
// It refuses directories outside the base dir.
func sweepEntry(base string, e stateEntry) error {
	if base == "" || e.Dir == "" {
		return nil
	}
	rel, err := filepath.Rel(base, e.Dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.Contains(rel, string(filepath.Separator)) {
		return fmt.Errorf("sweep: %s is not a directory of the local cloud's base %s", e.Dir, base)
	}
	return sweepTree(e.Dir)
}

// sweepTree stops any cluster found one or two levels down (dir/*/data or
// dir/*/*/data) and removes dir.
func sweepTree(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, pattern := range []string{"*/data/postmaster.pid", "*/*/data/postmaster.pid"} {
		pids, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range pids {
			clusterDir := filepath.Dir(filepath.Dir(p))
			if err := pgcluster.Sweep(clusterDir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
