package statemachine

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Definition is migration.asl.json as written, with its ${...}
// placeholders (one per Function, see Functions) still in it. CDK passes it
// to DefinitionBody_FromString with DefinitionSubstitutions; local runs use
// Substitute(Definition, LocalSubstitutions()).
//
//go:embed migration.asl.json
var Definition string

// LocalAccount and LocalRegion make up the fake ARNs of local runs.
const (
	LocalAccount = "000000000000"
	LocalRegion  = "us-east-1"
	// FunctionPrefix is the Lambda function name prefix: a function is
	// named FunctionPrefix + Dir.
	FunctionPrefix = "seedrepl-"
)

// placeholderRE matches a substitution as CDK's DefinitionSubstitutions
// understands it: ${name}.
var placeholderRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// Placeholders maps each placeholder name (without "${" and "}") to the
// Task state name whose Lambda ARN it stands for.
func Placeholders() map[string]string {
	m := make(map[string]string, len(Functions))
	for _, f := range Functions {
		m[f.Placeholder] = f.Name
	}
	return m
}

// FunctionByName returns the Function whose Task state is name.
func FunctionByName(name string) (Function, bool) {
	for _, f := range Functions {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// FunctionByARN returns the Function a Lambda ARN (or bare function name)
// refers to, by its function name FunctionPrefix + Dir. A qualifier
// (":alias" or ":version") is ignored.
func FunctionByARN(arn string) (Function, bool) {
	name := arn
	if strings.HasPrefix(arn, "arn:") {
		parts := strings.Split(arn, ":")
		// arn:partition:lambda:region:account:function:name[:qualifier]
		if len(parts) < 7 || parts[2] != "lambda" || parts[5] != "function" {
			return Function{}, false
		}
		name = parts[6]
	}
	for _, f := range Functions {
		if FunctionPrefix+f.Dir == name {
			return f, true
		}
	}
	return Function{}, false
}

// LocalARN is the fake ARN a local run uses for f.
func LocalARN(f Function) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s%s", LocalRegion, LocalAccount, FunctionPrefix, f.Dir)
}

// LocalSubstitutions maps every placeholder to its fake local ARN.
func LocalSubstitutions() map[string]string {
	m := make(map[string]string, len(Functions))
	for _, f := range Functions {
		m[f.Placeholder] = LocalARN(f)
	}
	return m
}

// Used returns the placeholder names that occur in def, sorted, each once.
func Used(def string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(def, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

// Substitute replaces every ${name} in def by subs[name], as CDK's
// DefinitionSubstitutions does. It fails, naming them all, if a placeholder
// has no value, if a key of subs is not used by def, or if the result is
// not valid JSON (a value must not need JSON escaping).
func Substitute(def string, subs map[string]string) (string, error) {
	used := Used(def)
	var problems []string
	var missing []string
	for _, name := range used {
		if _, ok := subs[name]; !ok {
			missing = append(missing, "${"+name+"}")
		}
	}
	if len(missing) > 0 {
		problems = append(problems, "unresolved placeholders: "+strings.Join(missing, ", "))
	}
	inDef := map[string]bool{}
	for _, name := range used {
		inDef[name] = true
	}
	var unused []string
	for k := range subs {
		if !inDef[k] {
			unused = append(unused, k)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		problems = append(problems, "unused substitution keys: "+strings.Join(unused, ", "))
	}
	var bad []string
	for _, name := range used {
		if v, ok := subs[name]; ok && strings.ContainsAny(v, "\"\\\n\r\t") {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		problems = append(problems, "values that would need JSON escaping: "+strings.Join(bad, ", "))
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("statemachine: substitution: %s", strings.Join(problems, "; "))
	}
	out := placeholderRE.ReplaceAllStringFunc(def, func(m string) string {
		return subs[m[2:len(m)-1]]
	})
	if !json.Valid([]byte(out)) {
		return "", fmt.Errorf("statemachine: substitution: the result is not valid JSON")
	}
	return out, nil
}

// LocalDefinition is Definition with the local fake ARNs substituted.
func LocalDefinition() (string, error) {
	return Substitute(Definition, LocalSubstitutions())
}
