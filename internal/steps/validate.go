package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/seedrepl/seedrepl/internal/sferr"
	"github.com/seedrepl/seedrepl/schema"
)

var (
	compiled     *jsonschema.Schema
	compileErr   error
	compileOnce  sync.Once
	schemaDoc    map[string]any
	rdsIDRE      = regexp.MustCompile(`^[a-zA-Z](-?[a-zA-Z0-9])*$`)
	secretARNRE  = regexp.MustCompile(`^arn:(aws[a-z-]*):secretsmanager:([a-z0-9-]+):([0-9]{12}):secret:`)
	stateMachine = []string{"executionId"} // keys the state machine may add to the document
)

func compileSchema() (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.ExecutionInput))
		if err != nil {
			compileErr = err
			return
		}
		_ = json.Unmarshal(schema.ExecutionInput, &schemaDoc)
		c := jsonschema.NewCompiler()
		if err := c.AddResource(schema.ExecutionInputURL, doc); err != nil {
			compileErr = err
			return
		}
		compiled, compileErr = c.Compile(schema.ExecutionInputURL)
	})
	return compiled, compileErr
}

// InputProblem is one thing wrong with the input: the field as a JSON
// pointer, what is wrong, and how to fix it.
type InputProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
	Fix     string `json:"fix,omitempty"`
}

func (p InputProblem) String() string {
	s := p.Field + ": " + p.Problem
	if p.Fix != "" {
		s += " (fix: " + p.Fix + ")"
	}
	return s
}

// InputError lists every problem of an input.
type InputError struct{ Problems []InputProblem }

func (e *InputError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  - " + p.String()
	}
	return fmt.Sprintf("execution input is invalid (%d problem(s)); nothing was created:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// CheckInput validates a raw execution input against the schema and the
// semantic rules, and decodes it. Every problem names its field.
func CheckInput(raw []byte) (Input, error) {
	var in Input
	sch, err := compileSchema()
	if err != nil {
		return in, fmt.Errorf("compile the input schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return in, &InputError{[]InputProblem{{Field: "/", Problem: "not valid JSON: " + err.Error(), Fix: "send a JSON object (see examples/)"}}}
	}
	if m, ok := inst.(map[string]any); ok {
		for _, k := range stateMachine {
			delete(m, k)
		}
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return in, err
		}
		return in, &InputError{schemaProblems(ve)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&in); err != nil {
		return in, &InputError{[]InputProblem{{Field: "/", Problem: err.Error()}}}
	}
	if probs := semanticProblems(in); len(probs) > 0 {
		return in, &InputError{probs}
	}
	return in, nil
}

// schemaProblems flattens the validator's output to the leaf errors.
func schemaProblems(ve *jsonschema.ValidationError) []InputProblem {
	seen := map[string]bool{}
	var out []InputProblem
	var walk func(u *jsonschema.OutputUnit)
	walk = func(u *jsonschema.OutputUnit) {
		if u.Error != nil && len(u.Errors) == 0 {
			msg := u.Error.String()
			field := u.InstanceLocation
			if field == "" {
				field = "/"
			}
			if !strings.HasPrefix(msg, "validation failed") {
				key := field + msg
				if !seen[key] {
					seen[key] = true
					out = append(out, InputProblem{Field: field, Problem: msg, Fix: fieldHint(field, msg)})
				}
			}
		}
		for i := range u.Errors {
			walk(&u.Errors[i])
		}
	}
	walk(ve.DetailedOutput())
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

// fieldHint is the schema's description of the field (or of the missing
// property named in the message).
func fieldHint(pointer, msg string) string {
	parts := strings.Split(strings.Trim(pointer, "/"), "/")
	if pointer == "/" || pointer == "" {
		parts = nil
	}
	if i := strings.Index(msg, "missing propert"); i >= 0 {
		if q := regexp.MustCompile(`'([^']+)'`).FindStringSubmatch(msg[i:]); q != nil {
			parts = append(parts, q[1])
		}
	}
	if i := strings.Index(msg, "additional propert"); i >= 0 {
		return "remove the field: the input takes only the documented fields (ids, names and secret ARNs; never a password or connection string)"
	}
	node := schemaDoc
	hint := ""
	for _, p := range parts {
		if props, ok := node["properties"].(map[string]any); ok {
			if n, ok := props[p].(map[string]any); ok {
				node = n
				hint, _ = n["description"].(string)
				continue
			}
		}
		if items, ok := node["items"].(map[string]any); ok {
			node = items // an array element: keep the array's description
			continue
		}
		return hint
	}
	return hint
}

// semanticProblems are the rules a schema cannot say well.
func semanticProblems(in Input) []InputProblem {
	var out []InputProblem
	add := func(field, problem, fix string) { out = append(out, InputProblem{field, problem, fix}) }
	if strings.Contains(in.MigrationID, "--") {
		add("/migrationId", "contains '--'", "RDS identifiers cannot contain two consecutive hyphens: use single hyphens")
	}
	if err := in.Scope.Validate(); err != nil {
		add("/scope", err.Error(), "list tables as schema.table, or schemas")
	}
	if in.Source.AdminSecretARN == in.Source.ReplicationSecretARN {
		add("/source/replicationSecretArn", "is the admin secret",
			"create a dedicated role (CREATE ROLE ... LOGIN; GRANT rds_replication; GRANT SELECT on the tables) with its own secret: its credentials are stored in the target's catalog or in DMS")
	}
	if in.Target.AdminSecretARN != "" && in.Target.AdminSecretARN == in.Source.ReplicationSecretARN {
		add("/target/adminSecretArn", "is the replication secret", "use the administrator's secret for the target")
	}
	// Every secret in one partition, region and account (the Lambdas read them with one client).
	var ref []string
	for _, f := range []struct{ field, arn string }{
		{"/source/adminSecretArn", in.Source.AdminSecretARN},
		{"/source/replicationSecretArn", in.Source.ReplicationSecretARN},
		{"/target/adminSecretArn", in.Target.AdminSecretARN},
	} {
		if f.arn == "" {
			continue
		}
		m := secretARNRE.FindStringSubmatch(f.arn)
		if m == nil {
			add(f.field, "is not a Secrets Manager secret ARN", "arn:aws:secretsmanager:<region>:<account>:secret:<name>")
			continue
		}
		if ref == nil {
			ref = m[1:]
		} else if m[1] != ref[0] || m[2] != ref[1] || m[3] != ref[2] {
			add(f.field, fmt.Sprintf("is in %s/%s, the source's admin secret in %s/%s", m[2], m[3], ref[1], ref[2]),
				"keep every secret in the region and account of the source instance")
		}
	}
	n := NamesFor(in)
	for _, id := range append([]string{n.Snapshot, n.Cluster, n.Writer, n.TempInstance}, n.Readers...) {
		if len(id) > 63 || !rdsIDRE.MatchString(id) {
			field := "/migrationId"
			if in.Target.ClusterID != "" && strings.HasPrefix(id, in.Target.ClusterID) {
				field = "/target/clusterId"
			}
			add(field, fmt.Sprintf("derived identifier %q is not a valid RDS identifier", id),
				"use letters, digits and single hyphens, start with a letter, and keep the derived names within 63 characters")
			break
		}
	}
	return out
}

// ValidateInput checks the execution input (schema, then semantics) and
// returns the plan: derived names, plugin, whether to upgrade. It calls no
// AWS API and creates nothing.
func (s *Steps) ValidateInput(ctx context.Context, raw json.RawMessage) (*Plan, error) {
	var probe struct {
		MigrationID string `json:"migrationId"`
		ExecutionID string `json:"executionId"`
	}
	_ = json.Unmarshal(raw, &probe)
	log := s.logger(&State{Input: Input{MigrationID: probe.MigrationID}, ExecutionID: probe.ExecutionID}, "ValidateInput")
	in, err := CheckInput(raw)
	if err != nil {
		var ie *InputError
		if errors.As(err, &ie) {
			log.Warn("input rejected", "problems", len(ie.Problems))
			return nil, sferr.NewInvalidInput(err)
		}
		return nil, err
	}
	if probs := s.secretsAllowed(in); len(probs) > 0 {
		log.Warn("input rejected", "problems", len(probs))
		return nil, sferr.NewInvalidInput(&InputError{Problems: probs})
	}
	p := &Plan{
		MigrationID:   in.MigrationID,
		Mode:          in.Mode,
		Plugin:        PluginFor(in.Mode),
		Upgrade:       in.Target.EngineVersion != "",
		EngineVersion: in.Target.EngineVersion,
		Names:         NamesFor(in),
		ValidatedAt:   s.stamp(),
	}
	if in.Subscription != nil && in.Subscription.SSLMode == "disable" {
		p.Warnings = append(p.Warnings, "/subscription/sslmode is disable: the subscription's connection to the source is not encrypted (local rehearsal only)")
	}
	log.Info("input valid", "mode", p.Mode, "upgrade", p.Upgrade, "readers", in.Target.Readers)
	return p, nil
}

// secretsAllowed refuses, before anything is created, a secret the
// deployment does not let the Lambdas read (Config.AllowedSecretARNs, the
// stack's secretArns): the run would otherwise fail later, at the first
// connection, with an AccessDenied after the slot exists.
func (s *Steps) secretsAllowed(in Input) []InputProblem {
	if len(s.Config.AllowedSecretARNs) == 0 {
		return nil
	}
	allowed := map[string]bool{}
	for _, a := range s.Config.AllowedSecretARNs {
		allowed[a] = true
	}
	var out []InputProblem
	for _, f := range []struct{ field, arn string }{
		{"/source/adminSecretArn", in.Source.AdminSecretARN},
		{"/source/replicationSecretArn", in.Source.ReplicationSecretARN},
		{"/target/adminSecretArn", in.Target.AdminSecretARN},
	} {
		if f.arn != "" && !allowed[f.arn] {
			out = append(out, InputProblem{f.field, "is not among the secrets this deployment may read",
				"give the full secret ARN (with its 6-character suffix) listed in the stack's secretArns context, or add it there and redeploy"})
		}
	}
	return out
}
