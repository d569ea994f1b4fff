package sellerclient

import (
	"bytes"
	"encoding/json"
	"errors"
)

// The helpers below walk JSON that has already been validated (by
// json.Valid or a successful json.Unmarshal of the same bytes) to find an
// object's members or an array's elements without decoding them. They let a
// package list be decoded in one pass per package instead of re-validating
// and re-decoding every level through maps of json.RawMessage. On bytes that
// are not valid JSON they stop early; they never index out of range.

// errNotValidJSON is returned when the walk meets something that is not JSON.
var errNotValidJSON = errors.New("invalid JSON")

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i] ('"').
// Most strings have no escape: the closing quote is found with IndexByte
// (vectorised), checking that no backslash comes before it; a string with
// one is walked byte by byte.
func skipString(b []byte, i int) int {
	if q := bytes.IndexByte(b[i+1:], '"'); q >= 0 && bytes.IndexByte(b[i+1:i+1+q], '\\') < 0 {
		return i + q + 2
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// eachMember calls fn with each member of the JSON object b, in order, with
// its key as written (quoted, and escaped when it has a backslash: compare
// it with keyIs) and its raw value, until fn returns false.
func eachMember(b []byte, fn func(key, val []byte) bool) error {
	i, empty, err := open(b, '{', '}')
	if err != nil || empty {
		return err
	}
	for i < len(b) {
		if b[i] != '"' {
			return errNotValidJSON
		}
		ks := i
		i = skipString(b, i)
		key := b[ks:i]
		i = skipWS(b, i)
		if i >= len(b) || b[i] != ':' {
			return errNotValidJSON
		}
		i = skipWS(b, i+1)
		vs := i
		i = skipValue(b, i)
		if i == vs {
			return errNotValidJSON
		}
		if !fn(key, b[vs:i]) {
			return nil
		}
		var done bool
		if i, done, err = next(b, i, '}'); err != nil || done {
			return err
		}
	}
	return errNotValidJSON
}

// open checks that b starts (after whitespace) with the opening byte and
// returns the index of the first member or element, or empty when the
// closing byte follows at once.
func open(b []byte, opening, closing byte) (i int, empty bool, err error) {
	i = skipWS(b, 0)
	if i >= len(b) || b[i] != opening {
		return i, false, errNotValidJSON
	}
	i = skipWS(b, i+1)
	return i, i < len(b) && b[i] == closing, nil
}

// next moves past the separator after a member or element at i: to the
// next one, or done at the closing byte.
func next(b []byte, i int, closing byte) (int, bool, error) {
	i = skipWS(b, i)
	switch {
	case i < len(b) && b[i] == ',':
		return skipWS(b, i+1), false, nil
	case i < len(b) && b[i] == closing:
		return i, true, nil
	}
	return i, false, errNotValidJSON
}

// keyIs reports whether the quoted key equals want, decoding escapes the
// way a map[string]… decoding would (exact, case-sensitive match).
func keyIs(quoted []byte, want string) bool {
	if len(quoted) < 2 {
		return false
	}
	inner := quoted[1 : len(quoted)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			return json.Unmarshal(quoted, &s) == nil && s == want
		}
	}
	return string(inner) == want
}

// member returns the raw value of the object's member named key (the last
// one when the key repeats, as decoding into a map keeps).
func member(b []byte, key string) (val []byte, found bool, err error) {
	err = eachMember(b, func(k, v []byte) bool {
		if keyIs(k, key) {
			val, found = v, true
		}
		return true
	})
	return val, found, err
}

// eachElement calls fn with each element of the JSON array b, in order.
func eachElement(b []byte, fn func(val []byte) error) error {
	i, empty, err := open(b, '[', ']')
	if err != nil || empty {
		return err
	}
	for i < len(b) {
		vs := i
		i = skipValue(b, i)
		if i == vs {
			return errNotValidJSON
		}
		if err := fn(b[vs:i]); err != nil {
			return err
		}
		var done bool
		if i, done, err = next(b, i, ']'); err != nil || done {
			return err
		}
	}
	return errNotValidJSON
}
