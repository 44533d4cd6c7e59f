// Package schema holds the JSON Schema of the execution input.
package schema

import _ "embed"

// ExecutionInput is execution-input.schema.json (draft 2020-12).
//
//go:embed execution-input.schema.json
var ExecutionInput []byte

// ExecutionInputURL is the schema's $id.
const ExecutionInputURL = "https://seedrepl.dev/schema/execution-input.schema.json"
