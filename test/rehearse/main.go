// Command rehearse is the project's main job: a full local rehearsal of the
// migration. It runs the real state machine (statemachine/migration.asl.json)
// on the local Step Functions engine, with the real step handlers and the
// real aws-sdk-go-v2 clients pointed at a local cloud whose RDS instances,
// snapshots, Aurora clusters and DMS tasks are real PostgreSQL clusters.
//
//	rehearse run    one rehearsal (MODE, SOURCE_DSN, KEEP, SCALE; see README)
//	rehearse down   stop a kept rehearsal, or the leftovers of a killed one
//	rehearse serve  the background process (started by run)
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/seedrepl/seedrepl/test/localcloud"
)

type config struct {
	Dir       string // state and reports (REHEARSAL_DIR, default <repo>/.rehearsal)
	Mode      string // subscription | dms (MODE)
	SourceDSN string // adopt this cluster as the source (SOURCE_DSN)
	Keep      bool   // leave the target replicating (KEEP=1)
	Scale     int    // pgbench scale of the sample (SCALE, default 10)
	Scope     string // adopted source: "schemas:a,b" or "tables:s.t,..." (SCOPE, default schemas:public)
	WaitScale float64
	Delays    localcloud.Delays
}

func configFromEnv() (config, error) {
	c := config{Dir: os.Getenv("REHEARSAL_DIR"), Mode: os.Getenv("MODE"), SourceDSN: os.Getenv("SOURCE_DSN"),
		Keep: os.Getenv("KEEP") == "1" || os.Getenv("KEEP") == "true", Scale: 10, Scope: os.Getenv("SCOPE"),
		WaitScale: 0.05, Delays: localcloud.RehearsalDelays()}
	if c.Dir == "" {
		c.Dir = ".rehearsal"
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, err
	}
	c.Dir = abs
	if c.Mode == "" {
		c.Mode = "subscription"
	}
	if c.Mode != "subscription" && c.Mode != "dms" {
		return c, fmt.Errorf("MODE=%q: use MODE=subscription (native publication/subscription, the default) or MODE=dms (a CDC-only DMS task)", c.Mode)
	}
	if s := os.Getenv("SCALE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return c, fmt.Errorf("SCALE=%q: use a pgbench scale from 1 to 1000 (10 = 1 million accounts)", s)
		}
		c.Scale = n
	}
	if s := os.Getenv("WAIT_SCALE"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1 {
			return c, fmt.Errorf("WAIT_SCALE=%q: use a factor in (0, 1] applied to the state machine's waits", s)
		}
		c.WaitScale = f
	}
	if s := os.Getenv("FAST"); s == "1" { // tests: statuses move within a second
		c.Delays = localcloud.FastDelays()
	}
	if c.SourceDSN != "" && !strings.HasPrefix(c.SourceDSN, "postgres://") && !strings.HasPrefix(c.SourceDSN, "postgresql://") {
		return c, fmt.Errorf("SOURCE_DSN must look like postgres://user@127.0.0.1:PORT/db")
	}
	return c, os.MkdirAll(c.Dir, 0o755)
}

func main() {
	cmd := "run"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rehearse:", err)
		os.Exit(2)
	}
	switch cmd {
	case "run":
		err = run(cfg)
	case "down":
		err = down(cfg)
	case "serve":
		err = serve(cfg)
	default:
		err = fmt.Errorf("unknown command %q: use run, down or serve", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rehearse:", err)
		os.Exit(1)
	}
}

func since(t0 time.Time) string { return fmt.Sprintf("%6.1fs", time.Since(t0).Seconds()) }
