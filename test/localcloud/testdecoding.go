package localcloud

// A parser for the text that PostgreSQL's test_decoding output plugin writes,
// one message per decoded record. Pure: no I/O, fuzzed (FuzzParseTestDecoding).
//
// The shapes (PostgreSQL 15, contrib/test_decoding/test_decoding.c):
//
//	BEGIN 1234                                  (include-xids on; "BEGIN" when off)
//	COMMIT 1234 (at 2024-01-01 00:00:00+00)     (the "(at …)" part with include-timestamp)
//	table public.t: INSERT: id[integer]:1 name[text]:'it''s'
//	table public.t: UPDATE: id[integer]:1 body[text]:unchanged-toast-datum
//	table public.t: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 n[text]:null
//	table public.t: DELETE: id[integer]:1
//	table public.k: DELETE: (no-tuple-data)
//	table public.a, public.b: TRUNCATE: restart_seqs cascade   ("(no-flags)" when none)
//	message: transactional: 1 prefix: p, sz: 3 content:abc
//
// Names are printed with quote_identifier (double quotes when needed, ""
// for a quote inside); types with format_type_be; values as the type's
// output function writes them: integers, floats, numeric and oid bare,
// booleans as true/false, bit strings as B'0101', everything else in single
// quotes with ' doubled. NULL is the bare word null; a TOASTed value the
// change did not touch is the bare word unchanged-toast-datum.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RecordKind is what a decoded message describes.
type RecordKind int

const (
	KindBegin RecordKind = iota + 1
	KindCommit
	KindInsert
	KindUpdate
	KindDelete
	KindTruncate
	KindMessage
)

func (k RecordKind) String() string {
	switch k {
	case KindBegin:
		return "BEGIN"
	case KindCommit:
		return "COMMIT"
	case KindInsert:
		return "INSERT"
	case KindUpdate:
		return "UPDATE"
	case KindDelete:
		return "DELETE"
	case KindTruncate:
		return "TRUNCATE"
	case KindMessage:
		return "message"
	}
	return fmt.Sprintf("RecordKind(%d)", int(k))
}

// Column is one column of a decoded tuple.
type Column struct {
	Name string // unquoted
	Type string // format_type_be's text, e.g. "integer", "character varying", "integer[]"
	// Value is the text the type's input function accepts (quotes removed,
	// '' undone, B'…' stripped); empty when Null or UnchangedToast.
	Value          string
	Null           bool
	UnchangedToast bool
}

// TableName is a schema-qualified table name, unquoted.
type TableName struct {
	Schema, Table string
}

func (n TableName) String() string { return quoteIdent(n.Schema) + "." + quoteIdent(n.Table) }

// Record is one test_decoding message.
type Record struct {
	Kind RecordKind
	// XID is the transaction id of BEGIN/COMMIT when include-xids is on.
	XID    uint32
	HasXID bool
	// CommitTime is the "(at …)" text of COMMIT with include-timestamp, as printed.
	CommitTime string

	// Table is the table of INSERT/UPDATE/DELETE.
	Table TableName
	// Tables are the tables of TRUNCATE.
	Tables               []TableName
	RestartSeqs, Cascade bool
	// OldKey is UPDATE's old-key part (replica identity columns; every column
	// for REPLICA IDENTITY FULL) and DELETE's tuple; nil when not printed.
	OldKey []Column
	// New is INSERT's and UPDATE's new tuple.
	New []Column
	// NoTupleData is set when the plugin printed (no-tuple-data): a DELETE on
	// a table without replica identity, for instance.
	NoTupleData bool

	// Message is the raw text after "message:" for a logical decoding message.
	Message string
}

// ParseError says where a message stopped making sense.
type ParseError struct {
	Input  string
	Offset int
	Reason string
}

func (e *ParseError) Error() string {
	in := e.Input
	if len(in) > 200 {
		in = in[:200] + "…"
	}
	return fmt.Sprintf("test_decoding: %s at offset %d in %q", e.Reason, e.Offset, in)
}

// ParseTestDecoding parses one message of test_decoding output.
func ParseTestDecoding(msg string) (Record, error) {
	p := &tdParser{s: msg}
	r, err := p.record()
	if err != nil {
		return Record{}, err
	}
	return r, nil
}

type tdParser struct {
	s   string
	pos int
}

func (p *tdParser) fail(format string, args ...any) error {
	return &ParseError{Input: p.s, Offset: p.pos, Reason: fmt.Sprintf(format, args...)}
}

func (p *tdParser) eof() bool { return p.pos >= len(p.s) }

func (p *tdParser) rest() string { return p.s[p.pos:] }

func (p *tdParser) consume(lit string) bool {
	if strings.HasPrefix(p.rest(), lit) {
		p.pos += len(lit)
		return true
	}
	return false
}

func (p *tdParser) expect(lit string) error {
	if !p.consume(lit) {
		return p.fail("expected %q", lit)
	}
	return nil
}

func (p *tdParser) record() (Record, error) {
	switch {
	case p.s == "BEGIN" || strings.HasPrefix(p.s, "BEGIN "):
		p.pos = len("BEGIN")
		r := Record{Kind: KindBegin}
		if !p.eof() {
			p.pos++
			x, err := p.xid()
			if err != nil {
				return Record{}, err
			}
			r.XID, r.HasXID = x, true
		}
		if !p.eof() {
			return Record{}, p.fail("trailing text after BEGIN")
		}
		return r, nil
	case p.s == "COMMIT" || strings.HasPrefix(p.s, "COMMIT "):
		p.pos = len("COMMIT")
		r := Record{Kind: KindCommit}
		if p.consume(" ") && p.eof() {
			return Record{}, p.fail("trailing space after COMMIT")
		}
		if p.pos > len("COMMIT") && !strings.HasPrefix(p.rest(), "(at ") {
			x, err := p.xid()
			if err != nil {
				return Record{}, err
			}
			r.XID, r.HasXID = x, true
			if !p.eof() && (!p.consume(" ") || p.eof()) {
				return Record{}, p.fail("expected (at <timestamp>) after the xid")
			}
		}
		if !p.eof() {
			if !p.consume("(at ") || !strings.HasSuffix(p.s, ")") || p.pos > len(p.s)-1 {
				return Record{}, p.fail("expected (at <timestamp>)")
			}
			r.CommitTime = p.s[p.pos : len(p.s)-1]
			if r.CommitTime == "" || strings.ContainsAny(r.CommitTime, "()") {
				return Record{}, p.fail("bad commit timestamp")
			}
			p.pos = len(p.s)
		}
		return r, nil
	case strings.HasPrefix(p.s, "message:"):
		return Record{Kind: KindMessage, Message: strings.TrimPrefix(p.s[len("message:"):], " ")}, nil
	case strings.HasPrefix(p.s, "table "):
		p.pos = len("table ")
		return p.tableRecord()
	}
	return Record{}, p.fail("unknown message")
}

func (p *tdParser) xid() (uint32, error) {
	start := p.pos
	for !p.eof() && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == start || p.pos-start > 10 {
		return 0, p.fail("bad transaction id")
	}
	v, err := strconv.ParseUint(p.s[start:p.pos], 10, 32)
	if err != nil {
		return 0, p.fail("bad transaction id: %v", err)
	}
	if p.pos-start > 1 && p.s[start] == '0' {
		return 0, p.fail("transaction id with a leading zero")
	}
	return uint32(v), nil
}

func (p *tdParser) tableRecord() (Record, error) {
	var names []TableName
	for {
		n, err := p.qualifiedName()
		if err != nil {
			return Record{}, err
		}
		names = append(names, n)
		if !p.consume(", ") {
			break
		}
	}
	if err := p.expect(": "); err != nil {
		return Record{}, err
	}
	var r Record
	switch {
	case p.consume("INSERT:"):
		r.Kind = KindInsert
	case p.consume("UPDATE:"):
		r.Kind = KindUpdate
	case p.consume("DELETE:"):
		r.Kind = KindDelete
	case p.consume("TRUNCATE:"):
		r.Kind = KindTruncate
	default:
		return Record{}, p.fail("unknown change kind")
	}
	if r.Kind == KindTruncate {
		r.Tables = names
		switch {
		case p.consume(" (no-flags)"):
		default:
			if p.consume(" restart_seqs") {
				r.RestartSeqs = true
			}
			if p.consume(" cascade") {
				r.Cascade = true
			}
			if !r.RestartSeqs && !r.Cascade {
				return Record{}, p.fail("TRUNCATE without flags or (no-flags)")
			}
		}
		if !p.eof() {
			return Record{}, p.fail("trailing text after TRUNCATE")
		}
		return r, nil
	}
	if len(names) != 1 {
		return Record{}, p.fail("%s names %d tables", r.Kind, len(names))
	}
	r.Table = names[0]
	if p.consume(" (no-tuple-data)") {
		if !p.eof() {
			return Record{}, p.fail("trailing text after (no-tuple-data)")
		}
		r.NoTupleData = true
		return r, nil
	}
	switch r.Kind {
	case KindInsert:
		cols, err := p.tuple("")
		if err != nil {
			return Record{}, err
		}
		r.New = cols
	case KindDelete:
		cols, err := p.tuple("")
		if err != nil {
			return Record{}, err
		}
		r.OldKey = cols
		if r.OldKey == nil {
			r.OldKey = []Column{}
		}
	case KindUpdate:
		if p.consume(" old-key:") {
			old, err := p.tuple(" new-tuple:")
			if err != nil {
				return Record{}, err
			}
			if old == nil {
				old = []Column{}
			}
			r.OldKey = old
			if err := p.expect(" new-tuple:"); err != nil {
				return Record{}, err
			}
			if p.consume(" (no-tuple-data)") {
				r.NoTupleData = true
				if !p.eof() {
					return Record{}, p.fail("trailing text after (no-tuple-data)")
				}
				return r, nil
			}
		}
		cols, err := p.tuple("")
		if err != nil {
			return Record{}, err
		}
		r.New = cols
	}
	if !p.eof() {
		return Record{}, p.fail("trailing text")
	}
	return r, nil
}

// tuple reads " col[type]:value" repeatedly until the end of input or stop.
func (p *tdParser) tuple(stop string) ([]Column, error) {
	var cols []Column
	for !p.eof() {
		if stop != "" && strings.HasPrefix(p.rest(), stop) {
			break
		}
		if err := p.expect(" "); err != nil {
			return nil, err
		}
		c, err := p.column()
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, nil
}

func (p *tdParser) column() (Column, error) {
	var c Column
	name, err := p.ident()
	if err != nil {
		return c, err
	}
	c.Name = name
	if err := p.expect("["); err != nil {
		return c, err
	}
	// The type ends at the first "]:" outside double quotes; a type can hold
	// brackets of its own ("integer[]").
	start := p.pos
	inQuote := false
	for {
		if p.eof() {
			return c, p.fail("unterminated type name")
		}
		ch := p.s[p.pos]
		if ch == '"' {
			inQuote = !inQuote
		} else if !inQuote && ch == ']' && p.pos+1 < len(p.s) && p.s[p.pos+1] == ':' {
			break
		}
		p.pos++
	}
	c.Type = p.s[start:p.pos]
	if c.Type == "" {
		return c, p.fail("empty type name")
	}
	p.pos += 2 // "]:"
	switch {
	case p.eof():
		return c, p.fail("missing value")
	case p.s[p.pos] == '\'':
		v, err := p.quoted()
		if err != nil {
			return c, err
		}
		c.Value = v
	case strings.HasPrefix(p.rest(), "B'"):
		p.pos += 2
		end := strings.IndexByte(p.rest(), '\'')
		if end < 0 {
			return c, p.fail("unterminated bit string")
		}
		c.Value = p.s[p.pos : p.pos+end]
		p.pos += end + 1
	default:
		start := p.pos
		for !p.eof() && p.s[p.pos] != ' ' {
			p.pos++
		}
		tok := p.s[start:p.pos]
		switch tok {
		case "":
			return c, p.fail("empty value")
		case "null":
			c.Null = true
		case "unchanged-toast-datum":
			c.UnchangedToast = true
		default:
			c.Value = tok
		}
	}
	if !p.eof() && p.s[p.pos] != ' ' {
		return c, p.fail("expected a space after a value")
	}
	return c, nil
}

// quoted reads '…' with ” for a quote.
func (p *tdParser) quoted() (string, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for {
		i := strings.IndexByte(p.rest(), '\'')
		if i < 0 {
			return "", p.fail("unterminated quoted value")
		}
		b.WriteString(p.s[p.pos : p.pos+i])
		p.pos += i + 1
		if !p.eof() && p.s[p.pos] == '\'' {
			b.WriteByte('\'')
			p.pos++
			continue
		}
		return b.String(), nil
	}
}

// ident reads an identifier as quote_identifier prints it.
func (p *tdParser) ident() (string, error) {
	if p.eof() {
		return "", p.fail("expected an identifier")
	}
	if p.s[p.pos] == '"' {
		p.pos++
		var b strings.Builder
		for {
			i := strings.IndexByte(p.rest(), '"')
			if i < 0 {
				return "", p.fail("unterminated quoted identifier")
			}
			b.WriteString(p.s[p.pos : p.pos+i])
			p.pos += i + 1
			if !p.eof() && p.s[p.pos] == '"' {
				b.WriteByte('"')
				p.pos++
				continue
			}
			if b.Len() == 0 {
				return "", p.fail("empty quoted identifier")
			}
			return b.String(), nil
		}
	}
	start := p.pos
	for !p.eof() && isIdentByte(p.s[p.pos], p.pos == start) {
		p.pos++
	}
	if p.pos == start {
		return "", p.fail("expected an identifier")
	}
	return p.s[start:p.pos], nil
}

func isIdentByte(c byte, first bool) bool {
	if c >= 'a' && c <= 'z' || c == '_' {
		return true
	}
	return !first && c >= '0' && c <= '9'
}

func (p *tdParser) qualifiedName() (TableName, error) {
	s, err := p.ident()
	if err != nil {
		return TableName{}, err
	}
	if err := p.expect("."); err != nil {
		return TableName{}, err
	}
	t, err := p.ident()
	if err != nil {
		return TableName{}, err
	}
	return TableName{Schema: s, Table: t}, nil
}

// ---------------------------------------------------------------- printing

// FormatTestDecoding prints a record the way test_decoding does. Tests use it
// to build input; the fuzz target checks that parsing its output gives the
// record back.
func FormatTestDecoding(r Record) (string, error) {
	var b strings.Builder
	switch r.Kind {
	case KindBegin, KindCommit:
		b.WriteString(r.Kind.String())
		if r.HasXID {
			fmt.Fprintf(&b, " %d", r.XID)
		}
		if r.Kind == KindCommit && r.CommitTime != "" {
			fmt.Fprintf(&b, " (at %s)", r.CommitTime)
		}
		return b.String(), nil
	case KindMessage:
		return "message: " + r.Message, nil
	case KindTruncate:
		if len(r.Tables) == 0 {
			return "", errors.New("TRUNCATE without tables")
		}
		b.WriteString("table ")
		for i, t := range r.Tables {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(t.String())
		}
		b.WriteString(": TRUNCATE:")
		if !r.RestartSeqs && !r.Cascade {
			b.WriteString(" (no-flags)")
		}
		if r.RestartSeqs {
			b.WriteString(" restart_seqs")
		}
		if r.Cascade {
			b.WriteString(" cascade")
		}
		return b.String(), nil
	case KindInsert, KindUpdate, KindDelete:
		fmt.Fprintf(&b, "table %s: %s:", r.Table, r.Kind)
		if r.Kind == KindUpdate && r.OldKey != nil {
			b.WriteString(" old-key:")
			writeTuple(&b, r.OldKey)
			b.WriteString(" new-tuple:")
		}
		if r.NoTupleData {
			b.WriteString(" (no-tuple-data)")
			return b.String(), nil
		}
		if r.Kind == KindDelete {
			writeTuple(&b, r.OldKey)
		} else {
			writeTuple(&b, r.New)
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("cannot format %v", r.Kind)
}

func writeTuple(b *strings.Builder, cols []Column) {
	for _, c := range cols {
		b.WriteByte(' ')
		b.WriteString(quoteIdent(c.Name))
		b.WriteByte('[')
		b.WriteString(c.Type)
		b.WriteString("]:")
		switch {
		case c.Null:
			b.WriteString("null")
		case c.UnchangedToast:
			b.WriteString("unchanged-toast-datum")
		default:
			switch {
			case bareType(c.Type) && bareSafe(c.Value):
				b.WriteString(c.Value)
			case (c.Type == "bit" || c.Type == "bit varying") && !strings.Contains(c.Value, "'"):
				b.WriteString("B'" + c.Value + "'")
			default:
				b.WriteString("'" + strings.ReplaceAll(c.Value, "'", "''") + "'")
			}
		}
	}
}

// quoteIdent quotes a name unless it is a plain lower-case identifier (it
// does not know keywords; the parser accepts both forms).
func quoteIdent(s string) string {
	plain := s != ""
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i], i == 0) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// bareType reports the types test_decoding prints without quotes.
func bareType(t string) bool {
	switch t {
	case "smallint", "integer", "bigint", "oid", "real", "double precision", "numeric", "boolean":
		return true
	}
	return false
}

// bareSafe reports whether a value reads back the same when printed bare.
func bareSafe(v string) bool {
	return v != "" && v != "null" && v != "unchanged-toast-datum" && v[0] != '\'' &&
		!strings.HasPrefix(v, "B'") && !strings.Contains(v, " ")
}
