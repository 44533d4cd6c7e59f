package localcloud

// Pure parts of the DMS applier: table mappings and the SQL that applies one
// decoded change on the target. No I/O; unit-tested without a server.

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ---------------------------------------------------------------- table mappings

// selectionRule is a DMS table-mapping rule of rule-type "selection".
type selectionRule struct {
	ID      string
	Schema  string // pattern: % any run of characters, _ any one character
	Table   string
	Action  string // include, exclude, explicit
	schemaR *regexp.Regexp
	tableR  *regexp.Regexp
}

// TableMappings is the parsed TableMappings JSON of a task.
type TableMappings struct {
	rules []selectionRule
}

// ParseTableMappings reads DMS's table-mapping JSON. Only selection rules
// matter to a CDC applier; transformation rules are refused (not applied
// here, and silently ignoring them would make the target differ).
func ParseTableMappings(s string) (*TableMappings, error) {
	var doc struct {
		Rules []struct {
			RuleType      string          `json:"rule-type"`
			RuleID        json.RawMessage `json:"rule-id"`
			RuleAction    string          `json:"rule-action"`
			ObjectLocator struct {
				SchemaName string `json:"schema-name"`
				TableName  string `json:"table-name"`
			} `json:"object-locator"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		return nil, fmt.Errorf("TableMappings: %w", err)
	}
	tm := &TableMappings{}
	for n, r := range doc.Rules {
		id := strings.Trim(string(r.RuleID), `"`)
		switch r.RuleType {
		case "selection":
		case "transformation":
			return nil, fmt.Errorf("TableMappings rule %s: transformation rules are not supported by the local cloud", id)
		default:
			return nil, fmt.Errorf("TableMappings rule %d: unknown rule-type %q", n+1, r.RuleType)
		}
		switch r.RuleAction {
		case "include", "exclude", "explicit":
		default:
			return nil, fmt.Errorf("TableMappings rule %s: unknown rule-action %q", id, r.RuleAction)
		}
		if r.ObjectLocator.SchemaName == "" || r.ObjectLocator.TableName == "" {
			return nil, fmt.Errorf("TableMappings rule %s: object-locator needs schema-name and table-name", id)
		}
		tm.rules = append(tm.rules, selectionRule{ID: id, Schema: r.ObjectLocator.SchemaName, Table: r.ObjectLocator.TableName,
			Action: r.RuleAction, schemaR: likeRegexp(r.ObjectLocator.SchemaName), tableR: likeRegexp(r.ObjectLocator.TableName)})
	}
	if len(tm.rules) == 0 {
		return nil, fmt.Errorf("TableMappings: no selection rules")
	}
	return tm, nil
}

func likeRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// Selected reports whether a table is replicated: an include (or explicit)
// rule matches and no exclude rule does.
func (tm *TableMappings) Selected(t TableName) bool {
	in := false
	for _, r := range tm.rules {
		if !r.schemaR.MatchString(t.Schema) || !r.tableR.MatchString(t.Table) {
			continue
		}
		if r.Action == "exclude" {
			return false
		}
		in = true
	}
	return in
}

// ---------------------------------------------------------------- statements

// Stmt is one statement to run on the target.
type Stmt struct {
	SQL  string
	Args []any
}

// ApplyDecision is what the applier does with one change.
type ApplyDecision struct {
	Stmt *Stmt
	// Skipped is set for what DMS drops: UPDATE and DELETE on a table without
	// a primary key (and changes that carry no key at all).
	Skipped bool
	Reason  string
}

var typeNameRE = regexp.MustCompile(`^(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$ ]*)(?:\.(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$ ]*))?(?:\(\d+(?:,\d+)?\))?(?:\[\])*$`)

// castType checks a type name from test_decoding (format_type_be's text)
// before it goes into SQL as a cast: identifiers, quoted identifiers, one
// dot, a typmod and array brackets, nothing else.
func castType(t string) (string, error) {
	if !typeNameRE.MatchString(t) || strings.Contains(t, "  ") || strings.HasSuffix(t, " ") {
		return "", fmt.Errorf("unexpected type name %q", t)
	}
	return t, nil
}

func findColumn(cols []Column, name string) (Column, bool) {
	for _, c := range cols {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// bindParam adds a value and returns "$n::type".
func bindParam(args *[]any, c Column) (string, error) {
	t, err := castType(c.Type)
	if err != nil {
		return "", err
	}
	if c.Null {
		*args = append(*args, nil)
	} else {
		*args = append(*args, c.Value)
	}
	return "$" + strconv.Itoa(len(*args)) + "::" + t, nil
}

// BuildApply turns one INSERT/UPDATE/DELETE into a statement, with DMS's
// semantics: pk is the target table's primary key (nil: the table has none).
// An unchanged TOAST value is left as it is on the target (not in the SET
// list); UPDATE and DELETE on a keyless table are skipped. Identifiers are
// quoted by pgx.Identifier; values are bound parameters cast to their type.
func BuildApply(r Record, pk []string) (ApplyDecision, error) {
	table := pgx.Identifier{r.Table.Schema, r.Table.Table}.Sanitize()
	var args []any
	switch r.Kind {
	case KindInsert:
		if r.NoTupleData || len(r.New) == 0 {
			return ApplyDecision{Skipped: true, Reason: "INSERT without tuple data"}, nil
		}
		var names, vals []string
		for _, c := range r.New {
			if c.UnchangedToast {
				continue
			}
			p, err := bindParam(&args, c)
			if err != nil {
				return ApplyDecision{}, err
			}
			names = append(names, pgx.Identifier{c.Name}.Sanitize())
			vals = append(vals, p)
		}
		return ApplyDecision{Stmt: &Stmt{SQL: "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") VALUES (" +
			strings.Join(vals, ", ") + ")", Args: args}}, nil
	case KindUpdate, KindDelete:
		if len(pk) == 0 {
			return ApplyDecision{Skipped: true, Reason: fmt.Sprintf("%s on %s, which has no primary key", r.Kind, r.Table)}, nil
		}
		keySrc := r.OldKey
		if r.Kind == KindUpdate && keySrc == nil {
			keySrc = r.New
		}
		if r.NoTupleData && r.Kind == KindDelete || keySrc == nil {
			return ApplyDecision{Skipped: true, Reason: fmt.Sprintf("%s on %s without key data", r.Kind, r.Table)}, nil
		}
		var sets []string
		if r.Kind == KindUpdate {
			if r.NoTupleData {
				return ApplyDecision{Skipped: true, Reason: fmt.Sprintf("UPDATE on %s without tuple data", r.Table)}, nil
			}
			for _, c := range r.New {
				if c.UnchangedToast {
					continue // DMS leaves the target's value alone
				}
				p, err := bindParam(&args, c)
				if err != nil {
					return ApplyDecision{}, err
				}
				sets = append(sets, pgx.Identifier{c.Name}.Sanitize()+" = "+p)
			}
			if len(sets) == 0 {
				return ApplyDecision{Skipped: true, Reason: "UPDATE that changes nothing"}, nil
			}
		}
		var where []string
		for _, k := range pk {
			c, ok := findColumn(keySrc, k)
			if !ok || c.UnchangedToast || c.Null {
				return ApplyDecision{}, fmt.Errorf("%s on %s: key column %q missing from the change", r.Kind, r.Table, k)
			}
			p, err := bindParam(&args, c)
			if err != nil {
				return ApplyDecision{}, err
			}
			where = append(where, pgx.Identifier{k}.Sanitize()+" = "+p)
		}
		sql := "DELETE FROM " + table
		if r.Kind == KindUpdate {
			sql = "UPDATE " + table + " SET " + strings.Join(sets, ", ")
		}
		return ApplyDecision{Stmt: &Stmt{SQL: sql + " WHERE " + strings.Join(where, " AND "), Args: args}}, nil
	}
	return ApplyDecision{}, fmt.Errorf("BuildApply: cannot apply %s", r.Kind)
}

// BuildTruncate is TRUNCATE for the selected tables of a TRUNCATE record.
func BuildTruncate(r Record, tables []TableName) Stmt {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{t.Schema, t.Table}.Sanitize()
	}
	sql := "TRUNCATE " + strings.Join(names, ", ")
	if r.RestartSeqs {
		sql += " RESTART IDENTITY"
	}
	if r.Cascade {
		sql += " CASCADE"
	}
	return Stmt{SQL: sql}
}
