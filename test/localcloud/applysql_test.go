package localcloud

import (
	"reflect"
	"testing"
)

func mustParse(t *testing.T, s string) Record {
	t.Helper()
	r, err := ParseTestDecoding(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBuildApply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		pk      []string
		sql     string
		args    []any
		skipped bool
	}{
		{"insert", `table public.items: INSERT: id[integer]:1 name[text]:'it''s' note[text]:null`, []string{"id"},
			`INSERT INTO "public"."items" ("id", "name", "note") VALUES ($1::integer, $2::text, $3::text)`, []any{"1", "it's", nil}, false},
		{"insert keyless", `table public.k: INSERT: a[integer]:1 b[character varying]:'x'`, nil,
			`INSERT INTO "public"."k" ("a", "b") VALUES ($1::integer, $2::character varying)`, []any{"1", "x"}, false},
		{"update leaves unchanged toast alone", `table public.docs: UPDATE: id[integer]:7 body[text]:unchanged-toast-datum n[integer]:3`, []string{"id"},
			`UPDATE "public"."docs" SET "id" = $1::integer, "n" = $2::integer WHERE "id" = $3::integer`, []any{"7", "3", "7"}, false},
		{"update with key change", `table public.items: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 name[text]:'b'`, []string{"id"},
			`UPDATE "public"."items" SET "id" = $1::integer, "name" = $2::text WHERE "id" = $3::integer`, []any{"2", "b", "1"}, false},
		{"update composite key, quoted names", `table "S"."T x": UPDATE: "K1"[bigint]:5 k2[text]:'a' v[integer[]]:'{1,2}'`, []string{"K1", "k2"},
			`UPDATE "S"."T x" SET "K1" = $1::bigint, "k2" = $2::text, "v" = $3::integer[] WHERE "K1" = $4::bigint AND "k2" = $5::text`,
			[]any{"5", "a", "{1,2}", "5", "a"}, false},
		{"delete", `table public.items: DELETE: id[integer]:9`, []string{"id"},
			`DELETE FROM "public"."items" WHERE "id" = $1::integer`, []any{"9"}, false},
		{"delete replica identity full", `table public.items: DELETE: id[integer]:9 name[text]:'x'`, []string{"id"},
			`DELETE FROM "public"."items" WHERE "id" = $1::integer`, []any{"9"}, false},
		{"update keyless is dropped", `table public.k: UPDATE: a[integer]:1 b[text]:'y'`, nil, "", nil, true},
		{"delete keyless is dropped", `table public.k: DELETE: (no-tuple-data)`, nil, "", nil, true},
		{"delete keyless full identity is dropped", `table public.k: DELETE: a[integer]:1 b[text]:'y'`, nil, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := BuildApply(mustParse(t, tt.in), tt.pk)
			if err != nil {
				t.Fatal(err)
			}
			if d.Skipped != tt.skipped {
				t.Fatalf("skipped = %v (%s), want %v", d.Skipped, d.Reason, tt.skipped)
			}
			if tt.skipped {
				if d.Stmt != nil {
					t.Fatalf("skipped change has a statement %q", d.Stmt.SQL)
				}
				return
			}
			if d.Stmt.SQL != tt.sql {
				t.Errorf("sql\n got %s\nwant %s", d.Stmt.SQL, tt.sql)
			}
			if !reflect.DeepEqual(d.Stmt.Args, tt.args) {
				t.Errorf("args %#v, want %#v", d.Stmt.Args, tt.args)
			}
		})
	}
}

func TestBuildApplyRefuses(t *testing.T) {
	for _, in := range []string{
		`table public.t: INSERT: a[integer); DROP TABLE x; --]:1`,
		`table public.t: INSERT: a[text']:'x'`,
		`table public.t: INSERT: a[integer ]:1`,
	} {
		r, err := ParseTestDecoding(in)
		if err != nil {
			continue // refused by the parser already
		}
		if d, err := BuildApply(r, []string{"a"}); err == nil {
			t.Errorf("BuildApply(%q) = %+v, want an error for the type name", in, d.Stmt)
		}
	}
	// A keyed UPDATE whose key column is missing from the change.
	if _, err := BuildApply(mustParse(t, `table public.t: DELETE: b[integer]:1`), []string{"a"}); err == nil {
		t.Error("DELETE without its key column: want an error")
	}
}

func TestTableMappings(t *testing.T) {
	tm, err := ParseTableMappings(`{"rules":[
		{"rule-type":"selection","rule-id":"1","rule-name":"all","object-locator":{"schema-name":"public","table-name":"%"},"rule-action":"include"},
		{"rule-type":"selection","rule-id":2,"rule-name":"skip","object-locator":{"schema-name":"public","table-name":"skip%"},"rule-action":"exclude"},
		{"rule-type":"selection","rule-id":"3","rule-name":"one","object-locator":{"schema-name":"app","table-name":"t_1"},"rule-action":"include"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		t    TableName
		want bool
	}{
		{TableName{"public", "items"}, true},
		{TableName{"public", "skipme"}, false},
		{TableName{"app", "t_1"}, true},
		{TableName{"app", "tx1"}, true}, // _ is a one-character wildcard, as in LIKE
		{TableName{"app", "t_12"}, false},
		{TableName{"other", "items"}, false},
		{TableName{"public.x", "items"}, false},
	} {
		if got := tm.Selected(c.t); got != c.want {
			t.Errorf("Selected(%s) = %v, want %v", c.t, got, c.want)
		}
	}
	for _, bad := range []string{``, `{}`, `{"rules":[]}`, `{"rules":[{"rule-type":"transformation","rule-id":"1","rule-action":"rename","object-locator":{"schema-name":"a","table-name":"b"}}]}`,
		`{"rules":[{"rule-type":"selection","rule-id":"1","rule-action":"maybe","object-locator":{"schema-name":"a","table-name":"b"}}]}`,
		`{"rules":[{"rule-type":"selection","rule-id":"1","rule-action":"include","object-locator":{"schema-name":"a"}}]}`} {
		if _, err := ParseTableMappings(bad); err == nil {
			t.Errorf("ParseTableMappings(%s): want an error", bad)
		}
	}
}
