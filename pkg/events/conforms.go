package events

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
)

// Conforms reports whether data certainly conforms to k's schema, reading
// the bytes once without building a decoded copy, and returns the payload's
// top-level campaign_id (hasCampaignID: the key is present). ok false means
// "not proven", not "invalid": the caller then asks ValidateData for the
// verdict and the error naming the field.
//
// It exists because the general validator (jsonschema on a decoded copy)
// cost about 55 µs and 24 KB per event, a quarter of a 1,000-seller
// campaign's CPU. The schemas are generated from the payload types and use
// few keywords (type, properties, required, enum, pattern, items,
// additionalProperties; format is an annotation in draft 2020-12): a kind
// whose schema uses anything else, and any input that is not plainly
// formed (escaped or non-ASCII strings are decoded first; numbers with a
// fraction or exponent where an integer is wanted, duplicate or unusual
// keys, deep nesting) is left to ValidateData. A differential fuzz test
// (FuzzConformsAgreesWithSchema) holds it to the general validator.
func Conforms(k Kind, data []byte) (campaignID string, hasCampaignID, ok bool) {
	fastOnce.Do(compileFast)
	root := fastRoots[k.Type]
	if root == nil {
		return "", false, false
	}
	s := scan{b: data}
	s.ws()
	if !s.value(root, 0, true) {
		return "", false, false
	}
	s.ws()
	if s.i != len(s.b) {
		return "", false, false
	}
	return s.cid, s.hasCID, true
}

// JSON types as a bit set; integer is its own bit (a number token with no
// fraction or exponent).
const (
	tNull uint8 = 1 << iota
	tBool
	tObject
	tArray
	tNumber
	tInteger
	tString
	tAny = tNull | tBool | tObject | tArray | tNumber | tInteger | tString
)

// fastNode is one compiled schema.
type fastNode struct {
	types    uint8
	props    map[string]*fastNode
	required map[string]int // property → bit in a uint64
	addl     *fastNode      // additionalProperties; nil: anything
	items    *fastNode      // nil: anything
	enum     map[string]bool
	pattern  *regexp.Regexp
}

var (
	fastOnce  sync.Once
	fastRoots map[string]*fastNode
)

func compileFast() {
	fastRoots = make(map[string]*fastNode, len(Kinds))
	for _, k := range Kinds {
		b, err := SchemaFS.ReadFile("schemas/" + k.SchemaFile())
		if err != nil {
			continue
		}
		var doc map[string]any
		if json.Unmarshal(b, &doc) != nil {
			continue
		}
		if n, err := fastCompile(doc); err == nil {
			fastRoots[k.Type] = n
		}
	}
}

// fastCompile compiles a schema object, or fails for a keyword or value the
// fast path does not implement.
func fastCompile(doc map[string]any) (*fastNode, error) {
	n := &fastNode{types: tAny}
	for key, v := range doc {
		switch key {
		case "$schema", "$id", "title", "description", "format", "$comment", "examples", "default":
			// annotations (format too, in draft 2020-12 without the
			// format-assertion vocabulary)
		case "type":
			t, err := fastTypes(v)
			if err != nil {
				return nil, err
			}
			n.types = t
		case "properties":
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("properties: %T", v)
			}
			n.props = make(map[string]*fastNode, len(m))
			for name, sub := range m {
				sm, ok := sub.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("property %s: %T", name, sub)
				}
				c, err := fastCompile(sm)
				if err != nil {
					return nil, err
				}
				n.props[name] = c
			}
		case "required":
			l, ok := v.([]any)
			if !ok || len(l) > 64 {
				return nil, fmt.Errorf("required: %v", v)
			}
			n.required = make(map[string]int, len(l))
			for _, r := range l {
				s, ok := r.(string)
				if !ok {
					return nil, fmt.Errorf("required: %v", r)
				}
				if _, dup := n.required[s]; !dup {
					n.required[s] = len(n.required)
				}
			}
		case "additionalProperties", "items":
			sm, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %v", key, v)
			}
			c, err := fastCompile(sm)
			if err != nil {
				return nil, err
			}
			if key == "items" {
				n.items = c
			} else {
				n.addl = c
			}
		case "enum":
			l, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("enum: %v", v)
			}
			n.enum = make(map[string]bool, len(l))
			for _, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("enum value %v is not a string", e)
				}
				n.enum[s] = true
			}
		case "pattern":
			p, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("pattern: %v", v)
			}
			re, err := regexp.Compile(p)
			if err != nil {
				return nil, err
			}
			n.pattern = re
		default:
			return nil, fmt.Errorf("keyword %q not implemented", key)
		}
	}
	return n, nil
}

func fastTypes(v any) (uint8, error) {
	one := func(s any) (uint8, error) {
		switch s {
		case "null":
			return tNull, nil
		case "boolean":
			return tBool, nil
		case "object":
			return tObject, nil
		case "array":
			return tArray, nil
		case "number":
			return tNumber | tInteger, nil
		case "integer":
			return tInteger, nil
		case "string":
			return tString, nil
		}
		return 0, fmt.Errorf("type %v", s)
	}
	if l, ok := v.([]any); ok {
		var t uint8
		for _, s := range l {
			b, err := one(s)
			if err != nil {
				return 0, err
			}
			t |= b
		}
		return t, nil
	}
	return one(v)
}

// maxFastDepth bounds recursion and maxFastKeys an object's keys; deeper
// documents and larger objects (the payload schemas have at most a few
// dozen properties) go to the general validator.
const (
	maxFastDepth = 32
	maxFastKeys  = 64
)

// scan walks JSON bytes against a fastNode. Every method returns false for
// "not proven" (invalid, or not handled here).
type scan struct {
	b      []byte
	i      int
	cid    string
	hasCID bool
}

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value checks one value against n (nil: any value, syntax only).
func (s *scan) value(n *fastNode, depth int, top bool) bool {
	if depth > maxFastDepth || s.i >= len(s.b) {
		return false
	}
	types := tAny
	if n != nil {
		types = n.types
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return types&tObject != 0 && s.object(n, depth, top)
	case c == '[':
		return types&tArray != 0 && s.array(n, depth)
	case c == '"':
		str, ok := s.str(n != nil && (n.enum != nil || n.pattern != nil))
		if !ok || types&tString == 0 {
			return false
		}
		if n != nil {
			if n.enum != nil && !n.enum[string(str)] {
				return false
			}
			if n.pattern != nil && !n.pattern.Match(str) {
				return false
			}
		}
		return true
	case c == 't':
		return types&tBool != 0 && n.noEnum() && s.lit("true")
	case c == 'f':
		return types&tBool != 0 && n.noEnum() && s.lit("false")
	case c == 'n':
		return types&tNull != 0 && n.noEnum() && s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		integer, ok := s.number()
		if !ok || !n.noEnum() {
			return false
		}
		if integer {
			return types&tInteger != 0
		}
		return types&tNumber != 0
	}
	return false
}

// noEnum: an enum of strings admits no other type.
func (n *fastNode) noEnum() bool { return n == nil || n.enum == nil }

func (s *scan) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

// number consumes a JSON number; integer reports no fraction or exponent.
func (s *scan) number() (integer, ok bool) {
	i := s.i
	if s.b[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(s.b) && s.b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false, false
	}
	integer = true
	if i < len(s.b) && s.b[i] == '.' {
		i++
		integer = false
		if digits() == 0 {
			return false, false
		}
	}
	if i < len(s.b) && (s.b[i] == 'e' || s.b[i] == 'E') {
		i++
		integer = false
		if i < len(s.b) && (s.b[i] == '+' || s.b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, false
		}
	}
	s.i = i
	return integer, true
}

// str consumes a string and returns its value: the bytes themselves when
// they hold no escape and no non-ASCII byte (no copy), else, when need is
// set, decoded exactly as encoding/json decodes it (escapes, invalid UTF-8
// replaced); a string whose value is not needed is only checked.
func (s *scan) str(need bool) ([]byte, bool) {
	start := s.i
	i := s.i + 1
	plain := true
	for {
		if i >= len(s.b) {
			return nil, false
		}
		c := s.b[i]
		switch {
		case c == '"':
			s.i = i + 1
			if plain || !need {
				return s.b[start+1 : i], true
			}
			var v string
			if json.Unmarshal(s.b[start:s.i], &v) != nil {
				return nil, false
			}
			return []byte(v), true
		case c == '\\':
			plain = false
			if i+1 >= len(s.b) {
				return nil, false
			}
			switch s.b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s.b) {
					return nil, false
				}
				for _, h := range s.b[i+2 : i+6] {
					if !isHex(h) {
						return nil, false
					}
				}
				i += 6
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		case c >= 0x80:
			plain = false
			i++
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// object checks an object: each property against its schema (or
// additionalProperties), then the required ones. A duplicate key is left
// to the general validator (encoding/json keeps the last value).
func (s *scan) object(n *fastNode, depth int, top bool) bool {
	s.i++ // {
	var seen uint64
	var buf [32][]byte // a package has 17 keys: grown on the heap, this was an allocation per event
	keys := buf[:0]    // keys met so far, to leave duplicates to the general validator
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return n == nil || len(n.required) == 0
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return false
		}
		key, ok := s.str(false)
		if !ok || !plainKey(key) {
			return false
		}
		if len(keys) == maxFastKeys {
			return false // the duplicate check is quadratic: large objects go to the general validator
		}
		for _, k := range keys {
			if string(k) == string(key) {
				return false
			}
		}
		keys = append(keys, key)
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		var sub *fastNode
		if n != nil {
			var known bool
			if sub, known = n.props[string(key)]; !known {
				sub = n.addl
			}
			if bit, req := n.required[string(key)]; req {
				seen |= 1 << bit
			}
		}
		if top && string(key) == "campaign_id" {
			s.hasCID = true
			if s.i < len(s.b) && s.b[s.i] == '"' {
				vstart := s.i
				v, ok := s.str(true)
				if !ok {
					return false
				}
				s.cid = string(v)
				s.i = vstart
			}
		}
		if !s.value(sub, depth+1, false) {
			return false
		}
		if more, ok := s.sep('}'); !ok {
			return false
		} else if !more {
			return n == nil || seen == uint64(1)<<len(n.required)-1
		}
	}
}

// sep consumes what follows a member: more is a ',' (another member), !more
// with ok the closing byte.
func (s *scan) sep(closing byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case closing:
		s.i++
		return false, true
	}
	return false, false
}

// plainKey: printable ASCII without escapes, so the key is the bytes.
func plainKey(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

func (s *scan) array(n *fastNode, depth int) bool {
	s.i++ // [
	var items *fastNode
	if n != nil {
		items = n.items
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		s.ws()
		if !s.value(items, depth+1, false) {
			return false
		}
		if more, ok := s.sep(']'); !ok || !more {
			return ok
		}
	}
}
