package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/seedrepl/seedrepl/statemachine"
)

// Context keys, read from cdk.json ("context") or `cdk synth -c key=value`.
const (
	KeyAccount           = "account"
	KeyRegion            = "region"
	KeyStackName         = "stackName"
	KeyVpcID             = "vpcId"
	KeyPrivateSubnetIDs  = "privateSubnetIds"
	KeyAvailabilityZones = "availabilityZones"
	KeySourceInstanceID  = "sourceInstanceId"
	KeySecretARNs        = "secretArns"
	KeyCABundlePath      = "caBundlePath"
	KeyDistDir           = "distDir"
	KeyStubMissingCode   = "stubMissingCode"
	KeyDBPort            = "dbPort"
	KeyLogRetentionDays  = "logRetentionDays"
	KeyRehearsalSchedule = "rehearsalSchedule"
	KeyRehearsalTimezone = "rehearsalTimezone"
	KeyRehearsalInput    = "rehearsalInput"
	KeyAlarmSlotLag      = "alarmOldestReplicationSlotLagBytes"
	KeyAlarmSlotDisk     = "alarmReplicationSlotDiskUsageBytes"
	KeyAlarmTxLogsDisk   = "alarmTransactionLogsDiskUsageBytes"
	KeyAlarmFreeStorage  = "alarmFreeStorageSpaceBytes"
)

// Defaults for the optional keys.
const (
	DefaultStackName         = "SeedreplMigration"
	DefaultCABundlePath      = "/var/task/rds-ca-bundle.pem"
	DefaultDBPort            = 5432
	DefaultLogRetentionDays  = 90
	DefaultRehearsalTimezone = "UTC"
	// DefaultSlotLagBytes: the oldest slot is 20 GiB of WAL behind. During the
	// snapshot and restore (hours) the slot retains every byte the source
	// writes, so size this as write rate x longest expected restore, with room.
	DefaultSlotLagBytes = 20 << 30
	// DefaultSlotDiskBytes: replication slot files use more than 20 GiB.
	DefaultSlotDiskBytes = 20 << 30
	// DefaultTxLogsDiskBytes: WAL on the source uses more than 50 GiB.
	DefaultTxLogsDiskBytes = 50 << 30
	// DefaultFreeStorageBytes: less than 20 GiB free on the source. This is
	// the alarm that matters most: a retained slot fills the disk and stops
	// production.
	DefaultFreeStorageBytes = 20 << 30
)

// Config is everything the stack needs, validated. Nothing in it is secret.
type Config struct {
	Account, Region   string // optional; empty means environment-agnostic
	StackName         string
	VpcID             string
	PrivateSubnetIDs  []string
	AvailabilityZones []string
	SourceInstanceID  string
	SecretARNs        []string
	CABundlePath      string
	DistDir           string // absolute; holds <Dir>/bootstrap per function
	// StubMissingCode (context stubMissingCode=true, used by `make synth`
	// only) replaces a missing dist/<Dir>/bootstrap by a stub that fails
	// every invocation, so the template can be reviewed before every Lambda
	// exists. StubbedFunctions lists the Task states concerned.
	StubMissingCode   bool
	StubbedFunctions  []string
	DBPort            int
	LogRetentionDays  int
	RehearsalSchedule string // "" = not configured
	RehearsalTimezone string
	RehearsalInput    string // compact JSON; "" = not configured
	Alarms            AlarmThresholds
}

// AlarmThresholds are the CloudWatch alarm thresholds on the source, in bytes.
type AlarmThresholds struct {
	OldestReplicationSlotLag float64
	ReplicationSlotDiskUsage float64
	TransactionLogsDiskUsage float64
	FreeStorageSpace         float64
}

// RehearsalEnabled reports whether the rehearsal schedule is configured (and
// so created ENABLED).
func (c Config) RehearsalEnabled() bool {
	return c.RehearsalSchedule != "" && c.RehearsalInput != ""
}

// Lookup returns a context value or nil. CDK's Node.TryGetContext fits.
type Lookup func(key string) any

// ConfigError lists every problem found, one line each, naming the key.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "invalid CDK context:\n  " + strings.Join(e.Problems, "\n  ")
}

var (
	vpcIDRE     = regexp.MustCompile(`^vpc-[0-9a-f]{8}([0-9a-f]{9})?$`)
	subnetIDRE  = regexp.MustCompile(`^subnet-[0-9a-f]{8}([0-9a-f]{9})?$`)
	azRE        = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+[a-z]$`)
	regionRE    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
	accountRE   = regexp.MustCompile(`^\d{12}$`)
	dbIDRE      = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]*(-[a-zA-Z0-9]+)*$`)
	secretARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):(\d{12}):secret:[A-Za-z0-9/_+=.@!-]+-[A-Za-z0-9]{6}$`)
	scheduleRE  = regexp.MustCompile(`^(cron|rate)\(.+\)$`)
	stackNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)
	sizeRE      = regexp.MustCompile(`^(\d+(\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?$`)
)

// ConfigFromContext reads and validates the configuration. repoRoot is the
// directory holding go.mod: distDir defaults to <repoRoot>/dist and a
// rehearsalInput that is not inline JSON is a file path relative to it.
func ConfigFromContext(get Lookup, repoRoot string) (Config, error) {
	var p problems
	c := Config{
		Account:           p.str(get, KeyAccount, false, accountRE, "123456789012"),
		Region:            p.str(get, KeyRegion, false, regionRE, "eu-west-1"),
		StackName:         p.str(get, KeyStackName, false, stackNameRE, DefaultStackName),
		VpcID:             p.str(get, KeyVpcID, true, vpcIDRE, "vpc-0123456789abcdef0"),
		PrivateSubnetIDs:  p.list(get, KeyPrivateSubnetIDs, true, subnetIDRE, "subnet-0123456789abcdef0,subnet-0fedcba9876543210"),
		AvailabilityZones: p.list(get, KeyAvailabilityZones, true, azRE, "eu-west-1a,eu-west-1b"),
		SourceInstanceID:  p.str(get, KeySourceInstanceID, true, dbIDRE, "prod-orders-pg"),
		SecretARNs:        p.list(get, KeySecretARNs, true, secretARNRE, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:seedrepl/source-AbCdEf"),
		CABundlePath:      p.str(get, KeyCABundlePath, false, nil, DefaultCABundlePath),
		DistDir:           p.str(get, KeyDistDir, false, nil, filepath.Join(repoRoot, "dist")),
		DBPort:            p.integer(get, KeyDBPort, DefaultDBPort, 1, 65535),
		LogRetentionDays:  p.integer(get, KeyLogRetentionDays, DefaultLogRetentionDays, 1, 3653),
		RehearsalSchedule: p.str(get, KeyRehearsalSchedule, false, scheduleRE, "cron(0 2 ? * SAT *)"),
		RehearsalTimezone: p.str(get, KeyRehearsalTimezone, false, nil, DefaultRehearsalTimezone),
		Alarms: AlarmThresholds{
			OldestReplicationSlotLag: p.size(get, KeyAlarmSlotLag, DefaultSlotLagBytes),
			ReplicationSlotDiskUsage: p.size(get, KeyAlarmSlotDisk, DefaultSlotDiskBytes),
			TransactionLogsDiskUsage: p.size(get, KeyAlarmTxLogsDisk, DefaultTxLogsDiskBytes),
			FreeStorageSpace:         p.size(get, KeyAlarmFreeStorage, DefaultFreeStorageBytes),
		},
	}

	// Cross-field rules.
	if c.Region != "" {
		for _, az := range c.AvailabilityZones {
			if !strings.HasPrefix(az, c.Region) {
				p.add(KeyAvailabilityZones, fmt.Sprintf("%q is not in region %q", az, c.Region),
					"list the zones of the region you deploy to")
			}
		}
	}
	if n, z := len(c.PrivateSubnetIDs), len(c.AvailabilityZones); n > 0 && z > 0 && n%z != 0 {
		p.add(KeyPrivateSubnetIDs, fmt.Sprintf("%d subnets for %d availability zones", n, z),
			"give one private subnet per zone, in the order of availabilityZones")
	}
	if c.LogRetentionDays != 0 {
		if _, ok := retentionDays[c.LogRetentionDays]; !ok {
			p.add(KeyLogRetentionDays, fmt.Sprintf("%d is not a CloudWatch Logs retention", c.LogRetentionDays),
				"use one of "+retentionList())
		}
	}
	if c.CABundlePath != "" && !strings.HasPrefix(c.CABundlePath, "/") {
		p.add(KeyCABundlePath, fmt.Sprintf("%q is not absolute", c.CABundlePath),
			"pass the path inside the Lambda, e.g. -c caBundlePath="+DefaultCABundlePath)
	}
	c.StubMissingCode = p.boolean(get, KeyStubMissingCode)
	c.DistDir, c.StubbedFunctions = p.distDir(c.DistDir, repoRoot, c.StubMissingCode)

	input := p.str(get, KeyRehearsalInput, false, nil, "")
	if input != "" {
		c.RehearsalInput = p.rehearsalInput(input, repoRoot)
	}
	switch {
	case c.RehearsalSchedule != "" && input == "":
		p.add(KeyRehearsalInput, "missing while rehearsalSchedule is set",
			`pass -c rehearsalInput=examples/<file>.json (or inline JSON with "rehearsal": true), or drop rehearsalSchedule`)
	case c.RehearsalSchedule == "" && input != "":
		p.add(KeyRehearsalSchedule, "missing while rehearsalInput is set",
			`pass -c "rehearsalSchedule=cron(0 2 ? * SAT *)", or drop rehearsalInput`)
	}

	if len(p) > 0 {
		return c, &ConfigError{Problems: p}
	}
	return c, nil
}

type problems []string

func (p *problems) add(key, what, fix string) {
	*p = append(*p, fmt.Sprintf("context %q: %s; %s", key, what, fix))
}

func (p *problems) missing(key, example string) {
	p.add(key, "missing", fmt.Sprintf("pass -c %s=%s or set it in cdk.json", key, example))
}

// str reads a string value. With required=false an absent key yields def
// (the example is then only used in messages when re does not match).
func (p *problems) str(get Lookup, key string, required bool, re *regexp.Regexp, example string) string {
	v := get(key)
	if v == nil {
		if required {
			p.missing(key, example)
			return ""
		}
		if re != nil && key != KeyStackName {
			return "" // optional with a pattern: absent means not configured
		}
		return example
	}
	s, ok := v.(string)
	if !ok {
		p.add(key, fmt.Sprintf("want a string, got %T", v), fmt.Sprintf("pass -c %s=%s", key, example))
		return ""
	}
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			p.missing(key, example)
		}
		return ""
	}
	if re != nil && !re.MatchString(s) {
		p.add(key, fmt.Sprintf("%q is not valid", s), fmt.Sprintf("use the form %s", example))
		return ""
	}
	return s
}

// list reads a JSON array of strings (cdk.json) or a comma-separated string (-c).
func (p *problems) list(get Lookup, key string, required bool, re *regexp.Regexp, example string) []string {
	v := get(key)
	var items []string
	switch t := v.(type) {
	case nil:
	case string:
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				p.add(key, fmt.Sprintf("want a list of strings, found %T", e), "use [\"...\", \"...\"] in cdk.json or a comma list with -c")
				return nil
			}
			items = append(items, strings.TrimSpace(s))
		}
	case []string:
		items = t
	default:
		p.add(key, fmt.Sprintf("want a list of strings, got %T", v), fmt.Sprintf("pass -c %s=%s", key, example))
		return nil
	}
	if len(items) == 0 {
		if required {
			p.missing(key, example)
		}
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range items {
		if !re.MatchString(s) {
			p.add(key, fmt.Sprintf("%q is not valid", s), fmt.Sprintf("use the form %s", strings.Split(example, ",")[0]))
			continue
		}
		if seen[s] {
			p.add(key, fmt.Sprintf("%q is listed twice", s), "list each once")
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func (p *problems) integer(get Lookup, key string, def, lo, hi int) int {
	v := get(key)
	var n int
	switch t := v.(type) {
	case nil:
		return def
	case float64:
		n = int(t)
		if float64(n) != t {
			p.add(key, fmt.Sprintf("%v is not a whole number", t), fmt.Sprintf("pass -c %s=%d", key, def))
			return def
		}
	case int:
		n = t
	case string:
		var err error
		if n, err = strconv.Atoi(strings.TrimSpace(t)); err != nil {
			p.add(key, fmt.Sprintf("%q is not a whole number", t), fmt.Sprintf("pass -c %s=%d", key, def))
			return def
		}
	default:
		p.add(key, fmt.Sprintf("want a number, got %T", v), fmt.Sprintf("pass -c %s=%d", key, def))
		return def
	}
	if n < lo || n > hi {
		p.add(key, fmt.Sprintf("%d is out of range %d..%d", n, lo, hi), fmt.Sprintf("pass -c %s=%d", key, def))
		return def
	}
	return n
}

// size reads a byte count: a number, or a string such as "20GiB".
func (p *problems) size(get Lookup, key string, def float64) float64 {
	v := get(key)
	fix := fmt.Sprintf("pass -c %s=20GiB (units B, KiB, MiB, GiB, TiB) or a number of bytes", key)
	var f float64
	switch t := v.(type) {
	case nil:
		return def
	case float64:
		f = t
	case int:
		f = float64(t)
	case string:
		m := sizeRE.FindStringSubmatch(strings.TrimSpace(t))
		if m == nil {
			p.add(key, fmt.Sprintf("%q is not a size", t), fix)
			return def
		}
		f, _ = strconv.ParseFloat(m[1], 64)
		f *= map[string]float64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[3]]
	default:
		p.add(key, fmt.Sprintf("want a size, got %T", v), fix)
		return def
	}
	if f <= 0 {
		p.add(key, fmt.Sprintf("%v must be positive", v), fix)
		return def
	}
	return f
}

// distDir checks that every function's bootstrap exists, so a forgotten
// `make build` fails with a message rather than deep inside the asset code.
func (p *problems) distDir(dir, repoRoot string, stub bool) (string, []string) {
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(repoRoot, dir)
	}
	var missing, stubbed []string
	for _, f := range statemachine.Functions {
		if st, err := os.Stat(filepath.Join(dir, f.Dir, "bootstrap")); err != nil || st.IsDir() {
			missing = append(missing, f.Dir+"/bootstrap")
			stubbed = append(stubbed, f.Name)
		}
	}
	if stub {
		return dir, stubbed
	}
	if len(missing) > 0 {
		shown := missing
		if len(shown) > 3 {
			shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(missing)-3))
		}
		p.add(KeyDistDir, fmt.Sprintf("%s lacks %s", dir, strings.Join(shown, ", ")),
			"run `make build` first (or pass -c distDir=<dir> holding <lambda>/bootstrap)")
	}
	return dir, nil
}

func (p *problems) boolean(get Lookup, key string) bool {
	switch t := get(key).(type) {
	case nil:
		return false
	case bool:
		return t
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "true", "1", "yes":
			return true
		case "false", "0", "no", "":
			return false
		}
	}
	p.add(key, fmt.Sprintf("%v is not a boolean", get(key)), fmt.Sprintf("pass -c %s=true or false", key))
	return false
}

// CodeDir is the asset directory of a function: dist/<dir>, or a stub when
// StubMissingCode is on and the bootstrap is missing.
func (c Config) CodeDir(f statemachine.Function) (string, error) {
	for _, n := range c.StubbedFunctions {
		if n == f.Name {
			return stubDir()
		}
	}
	return filepath.Join(c.DistDir, f.Dir), nil
}

// stubDir writes (once per process) a directory whose bootstrap fails every
// invocation with a message, for `make synth` before all Lambdas exist.
func stubDir() (string, error) {
	stubOnce.Do(func() {
		d, err := os.MkdirTemp("", "seedrepl-stub-")
		if err == nil {
			err = os.WriteFile(filepath.Join(d, "bootstrap"),
				[]byte("#!/bin/sh\necho 'seedrepl: this function was synthesized from a stub (stubMissingCode); run make build and deploy again' >&2\nexit 1\n"), 0o755)
		}
		stubPath, stubErr = d, err
	})
	return stubPath, stubErr
}

var (
	stubOnce sync.Once
	stubPath string
	stubErr  error
)

// RemoveStubs deletes the stub directory, if one was made. Call it after
// app.Synth: the assets are copied into the cloud assembly by then.
func RemoveStubs() {
	if stubPath != "" {
		_ = os.RemoveAll(stubPath)
	}
}

// rehearsalInput accepts inline JSON or a path (relative to the repo root) to
// a JSON file, and requires a JSON object with "rehearsal": true.
func (p *problems) rehearsalInput(v, repoRoot string) string {
	raw := []byte(v)
	if !strings.HasPrefix(v, "{") {
		path := v
		if !filepath.IsAbs(path) {
			path = filepath.Join(repoRoot, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			p.add(KeyRehearsalInput, fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err)),
				"pass inline JSON or a file path relative to the repository root, e.g. -c rehearsalInput=examples/rehearsal.json")
			return ""
		}
		raw = b
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		p.add(KeyRehearsalInput, "not a JSON object: "+err.Error(), "give the execution input as a JSON object")
		return ""
	}
	if r, ok := obj["rehearsal"].(bool); !ok || !r {
		p.add(KeyRehearsalInput, `does not say "rehearsal": true`,
			`a scheduled run must be a rehearsal: add "rehearsal": true to the input`)
		return ""
	}
	compact, _ := json.Marshal(obj)
	return string(compact)
}

// retentionDays maps the CloudWatch Logs retention values to days.
var retentionDays = map[int]string{
	1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
	30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS",
	150: "FIVE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS",
	545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS", 1827: "FIVE_YEARS",
	2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
	3653: "TEN_YEARS",
}

func retentionList() string {
	var d []int
	for k := range retentionDays {
		d = append(d, k)
	}
	sort.Ints(d)
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

// FindRepoRoot walks up from dir to the directory whose go.mod declares this
// module.
func FindRepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/seedrepl/seedrepl\n") {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod of github.com/seedrepl/seedrepl above %s: run from the repository", dir)
		}
		d = parent
	}
}
