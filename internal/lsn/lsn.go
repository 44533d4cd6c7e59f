// Package lsn is a strict PostgreSQL log sequence number.
//
// PostgreSQL prints an LSN as two hexadecimal numbers of at most eight digits
// each, "X/Y", standing for the 64-bit position X<<32 | Y. Parse accepts that
// form and nothing else: no spaces, signs, prefixes, extra parts or digits
// beyond eight. The seed LSN decides which changes a target replays, so a
// lenient parser that reads "16/B374D848xyz" as 16/B374D848 is a correctness bug.
package lsn

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgtype"
)

// LSN is a position in the write-ahead log.
type LSN uint64

// Invalid is PostgreSQL's InvalidXLogRecPtr, 0/0.
const Invalid LSN = 0

// ParseError says why a string is not an LSN.
type ParseError struct {
	Input  string
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid LSN %q: %s (want X/Y with 1-8 hex digits on each side, e.g. 16/B374D848)", e.Input, e.Reason)
}

// Parse reads "X/Y" strictly.
func Parse(s string) (LSN, error) {
	slash := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			if slash >= 0 {
				return 0, &ParseError{s, "more than one '/'"}
			}
			slash = i
		case isHex(c):
		default:
			return 0, &ParseError{s, fmt.Sprintf("unexpected character %q at offset %d", c, i)}
		}
	}
	if slash < 0 {
		return 0, &ParseError{s, "missing '/'"}
	}
	hi, lo := s[:slash], s[slash+1:]
	if len(hi) == 0 || len(lo) == 0 {
		return 0, &ParseError{s, "empty part"}
	}
	if len(hi) > 8 || len(lo) > 8 {
		return 0, &ParseError{s, "more than 8 hex digits in a part"}
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, &ParseError{s, err.Error()}
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, &ParseError{s, err.Error()}
	}
	return LSN(h<<32 | l), nil
}

// MustParse is Parse for constants in tests; it panics on bad input.
func MustParse(s string) LSN {
	l, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return l
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// String prints the canonical form PostgreSQL uses: upper-case hex, no padding.
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// Compare returns -1, 0 or +1.
func (l LSN) Compare(o LSN) int {
	switch {
	case l < o:
		return -1
	case l > o:
		return 1
	}
	return 0
}

// Sub returns the byte distance l - o, negative when o is ahead of l.
func (l LSN) Sub(o LSN) int64 {
	return int64(l) - int64(o)
}

// MarshalText makes an LSN print as "X/Y" in JSON.
func (l LSN) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses strictly.
func (l *LSN) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Scan implements sql.Scanner (database/sql and pgx's fallback).
func (l *LSN) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		return errors.New("cannot scan NULL into lsn.LSN (use *lsn.LSN with a nullable column, or COALESCE)")
	case string:
		return l.UnmarshalText([]byte(v))
	case []byte:
		return l.UnmarshalText(v)
	case uint64:
		*l = LSN(v)
		return nil
	case int64:
		*l = LSN(uint64(v))
		return nil
	}
	return fmt.Errorf("cannot scan %T into lsn.LSN", src)
}

// Value encodes an LSN as text, which PostgreSQL casts to pg_lsn.
func (l LSN) Value() (driver.Value, error) { return l.String(), nil }

// TextValue lets pgx encode an LSN for a pg_lsn parameter.
func (l LSN) TextValue() (pgtype.Text, error) {
	return pgtype.Text{String: l.String(), Valid: true}, nil
}

// ScanText lets pgx decode a pg_lsn in text format.
func (l *LSN) ScanText(v pgtype.Text) error {
	if !v.Valid {
		return errors.New("cannot scan NULL into lsn.LSN")
	}
	return l.UnmarshalText([]byte(v.String))
}
