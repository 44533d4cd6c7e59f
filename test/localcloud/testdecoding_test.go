package localcloud

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTestDecoding(t *testing.T) {
	tbl := TableName{"public", "t"}
	tests := []struct {
		in   string
		want Record
	}{
		{"BEGIN", Record{Kind: KindBegin}},
		{"BEGIN 1234", Record{Kind: KindBegin, XID: 1234, HasXID: true}},
		{"COMMIT", Record{Kind: KindCommit}},
		{"COMMIT 4294967295", Record{Kind: KindCommit, XID: 4294967295, HasXID: true}},
		{"COMMIT 7 (at 2024-01-02 03:04:05.123456+00)", Record{Kind: KindCommit, XID: 7, HasXID: true, CommitTime: "2024-01-02 03:04:05.123456+00"}},
		{"COMMIT (at 2024-01-02 03:04:05+00)", Record{Kind: KindCommit, CommitTime: "2024-01-02 03:04:05+00"}},
		{"table public.t: INSERT: id[integer]:1 name[text]:'it''s' f[double precision]:-1.5e+10 ok[boolean]:true",
			Record{Kind: KindInsert, Table: tbl, New: []Column{
				{Name: "id", Type: "integer", Value: "1"},
				{Name: "name", Type: "text", Value: "it's"},
				{Name: "f", Type: "double precision", Value: "-1.5e+10"},
				{Name: "ok", Type: "boolean", Value: "true"},
			}}},
		{"table public.t: INSERT: n[text]:null b[bit varying]:B'0101' a[integer[]]:'{1,2}' s[character varying]:'a b'",
			Record{Kind: KindInsert, Table: tbl, New: []Column{
				{Name: "n", Type: "text", Null: true},
				{Name: "b", Type: "bit varying", Value: "0101"},
				{Name: "a", Type: "integer[]", Value: "{1,2}"},
				{Name: "s", Type: "character varying", Value: "a b"},
			}}},
		{"table public.t: INSERT: v[text]:'line1\nline2 ''quoted'' null'",
			Record{Kind: KindInsert, Table: tbl, New: []Column{{Name: "v", Type: "text", Value: "line1\nline2 'quoted' null"}}}},
		{"table public.t: INSERT: v[text]:'null' w[text]:''",
			Record{Kind: KindInsert, Table: tbl, New: []Column{{Name: "v", Type: "text", Value: "null"}, {Name: "w", Type: "text", Value: ""}}}},
		{`table "My Schema"."odd""name": INSERT: "Col X"[public."MyType"]:'x' "old-key:"[text]:'y'`,
			Record{Kind: KindInsert, Table: TableName{"My Schema", `odd"name`}, New: []Column{
				{Name: "Col X", Type: `public."MyType"`, Value: "x"},
				{Name: "old-key:", Type: "text", Value: "y"},
			}}},
		{"table public.docs: UPDATE: id[integer]:1 body[text]:unchanged-toast-datum n[integer]:2",
			Record{Kind: KindUpdate, Table: TableName{"public", "docs"}, New: []Column{
				{Name: "id", Type: "integer", Value: "1"},
				{Name: "body", Type: "text", UnchangedToast: true},
				{Name: "n", Type: "integer", Value: "2"},
			}}},
		{"table public.t: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 v[text]:'x'",
			Record{Kind: KindUpdate, Table: tbl,
				OldKey: []Column{{Name: "id", Type: "integer", Value: "1"}},
				New:    []Column{{Name: "id", Type: "integer", Value: "2"}, {Name: "v", Type: "text", Value: "x"}}}},
		{"table public.t: DELETE: id[integer]:1",
			Record{Kind: KindDelete, Table: tbl, OldKey: []Column{{Name: "id", Type: "integer", Value: "1"}}}},
		{"table public.k: DELETE: (no-tuple-data)",
			Record{Kind: KindDelete, Table: TableName{"public", "k"}, NoTupleData: true}},
		{"table public.t: INSERT:", Record{Kind: KindInsert, Table: tbl}},
		{"table public.a, s.b: TRUNCATE: restart_seqs cascade",
			Record{Kind: KindTruncate, Tables: []TableName{{"public", "a"}, {"s", "b"}}, RestartSeqs: true, Cascade: true}},
		{"table public.a: TRUNCATE: (no-flags)", Record{Kind: KindTruncate, Tables: []TableName{{"public", "a"}}}},
		{"message: transactional: 1 prefix: p, sz: 3 content:abc", Record{Kind: KindMessage, Message: "transactional: 1 prefix: p, sz: 3 content:abc"}},
	}
	for _, tt := range tests {
		got, err := ParseTestDecoding(tt.in)
		if err != nil {
			t.Errorf("ParseTestDecoding(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseTestDecoding(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
		// Printing gives back the same text for these (canonical) inputs.
		if out, err := FormatTestDecoding(got); err != nil || out != tt.in {
			t.Errorf("FormatTestDecoding(parse(%q)) = %q, %v", tt.in, out, err)
		}
	}
}

func TestParseTestDecodingRejects(t *testing.T) {
	bad := []string{
		"",
		"BEGIN x",
		"BEGIN 12 13",
		"BEGIN 012",
		"BEGIN 99999999999",
		"COMMIT ",
		"COMMIT 12 ",
		"COMMIT 12 (at x",
		"COMMIT 12 junk",
		"table public.t INSERT: a[integer]:1",
		"table t: INSERT: a[integer]:1",
		"table public.t: UPSERT: a[integer]:1",
		"table public.t: INSERT: a[integer]:'unterminated",
		"table public.t: INSERT: a[integer]:",
		"table public.t: INSERT: a[integer]:1  b[integer]:2",
		"table public.t: INSERT: a[integer:1",
		"table public.t: INSERT: a[]:1",
		"table public.t: INSERT: a[text]:'x'y",
		"table public.t: INSERT: A[integer]:1",
		`table public."": INSERT: a[integer]:1`,
		"table public.t: UPDATE: old-key: a[integer]:1",
		"table public.t: DELETE: (no-tuple-data) x",
		"table public.a, public.b: INSERT: a[integer]:1",
		"table public.a: TRUNCATE:",
		"table public.a: TRUNCATE: (no-flags) cascade",
		"garbage",
	}
	for _, in := range bad {
		if r, err := ParseTestDecoding(in); err == nil {
			t.Errorf("ParseTestDecoding(%q) = %+v, want an error", in, r)
		} else if _, ok := err.(*ParseError); !ok {
			t.Errorf("ParseTestDecoding(%q) error %T, want *ParseError", in, err)
		}
	}
}

// FuzzParseTestDecoding: no input panics, and whatever parses prints back to
// text that parses to the same record.
func FuzzParseTestDecoding(f *testing.F) {
	for _, s := range []string{
		"BEGIN 1", "COMMIT 1 (at 2024-01-01 00:00:00+00)",
		"table public.t: INSERT: id[integer]:1 name[text]:'it''s'",
		"table public.t: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 v[text]:unchanged-toast-datum",
		"table public.k: DELETE: (no-tuple-data)",
		`table "a b"."c""d": INSERT: "x y"[integer[]]:'{1}' b[bit]:B'01' n[numeric]:null`,
		"table public.a, public.b: TRUNCATE: restart_seqs",
		"message: transactional: 0 prefix: x, sz: 1 content:y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseTestDecoding(in)
		if err != nil {
			return
		}
		out, err := FormatTestDecoding(r)
		if err != nil {
			t.Fatalf("parsed %q but cannot print %+v: %v", in, r, err)
		}
		r2, err := ParseTestDecoding(out)
		if err != nil {
			t.Fatalf("parsed %q, printed %q, which does not parse: %v", in, out, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip of %q via %q:\n %+v\n %+v", in, out, r, r2)
		}
		if strings.HasPrefix(in, "table ") && r.Kind == 0 {
			t.Fatalf("table record without kind: %q", in)
		}
	})
}
