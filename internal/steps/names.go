package steps

import (
	"fmt"

	"github.com/seedrepl/seedrepl/internal/pgops"
)

// Tag keys put on every resource a migration creates.
const (
	TagManaged   = "seedrepl-managed"
	TagMigration = "seedrepl-migration"
)

// NamesFor derives every resource name from the input: the same input gives
// the same names, so a re-run finds what an earlier run made.
func NamesFor(in Input) Names {
	p := "seedrepl-" + in.MigrationID
	obj := pgops.ObjectName(in.MigrationID)
	n := Names{
		Slot:         obj,
		Publication:  obj,
		Subscription: obj,
		Snapshot:     p + "-snap",
		Cluster:      p + "-aurora",
		TempInstance: p + "-seedtmp",
	}
	if in.Target.ClusterID != "" {
		n.Cluster = in.Target.ClusterID
	}
	n.Writer = n.Cluster + "-writer"
	for i := 1; i <= in.Target.Readers; i++ {
		n.Readers = append(n.Readers, fmt.Sprintf("%s-reader-%d", n.Cluster, i))
	}
	if in.Mode == ModeDMS {
		n.DMSInstance = p + "-ri"
		n.DMSSource = p + "-src"
		n.DMSTarget = p + "-tgt"
		n.DMSTask = p + "-task"
	}
	return n
}

// dmsNames are the DMS names whatever the mode (Rollback looks for them all).
func dmsNames(id string) (instance, src, tgt, task string) {
	p := "seedrepl-" + id
	return p + "-ri", p + "-src", p + "-tgt", p + "-task"
}

// Modes and plugins.
const (
	ModeSubscription = "subscription"
	ModeDMS          = "dms"
	PluginPgoutput   = "pgoutput"
	PluginTest       = "test_decoding"
)

// PluginFor is the logical decoding plugin of a mode.
func PluginFor(mode string) string {
	if mode == ModeDMS {
		return PluginTest
	}
	return PluginPgoutput
}
