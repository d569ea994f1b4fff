package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	jskind "github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// SchemaFS holds the committed JSON Schemas of every event payload, one file
// per kind (see Kind.SchemaFile). They are the published contract; a test
// checks they match the Go payload types.
//
//go:embed schemas/*.json
var SchemaFS embed.FS

// SchemaBaseURI is the $id prefix of the published schemas.
const SchemaBaseURI = "https://dealflow.dev/schemas/"

var (
	compileOnce sync.Once
	compiled    map[string]*jsonschema.Schema
	compileErr  error
)

func compileSchemas() {
	compiled = make(map[string]*jsonschema.Schema, len(Kinds))
	c := jsonschema.NewCompiler()
	for _, k := range Kinds {
		b, err := SchemaFS.ReadFile("schemas/" + k.SchemaFile())
		if err != nil {
			compileErr = fmt.Errorf("events: schema for %s: %w", k.Name, err)
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			compileErr = fmt.Errorf("events: schema for %s: %w", k.Name, err)
			return
		}
		if err := c.AddResource(SchemaBaseURI+k.SchemaFile(), doc); err != nil {
			compileErr = fmt.Errorf("events: schema for %s: %w", k.Name, err)
			return
		}
	}
	for _, k := range Kinds {
		s, err := c.Compile(SchemaBaseURI + k.SchemaFile())
		if err != nil {
			compileErr = fmt.Errorf("events: compile schema for %s: %w", k.Name, err)
			return
		}
		compiled[k.Type] = s
	}
}

// CompileSchemas compiles the embedded schemas (and Conforms' fast checks)
// now instead of on the first validation, so a process pays for it at start (not inside its first
// campaign) and a broken schema fails the start. It is safe to call more
// than once.
func CompileSchemas() error {
	compileOnce.Do(compileSchemas)
	fastOnce.Do(compileFast)
	return compileErr
}

// ValidateData checks a payload against its kind's schema. Errors wrap
// ErrInvalid and name the offending field.
func ValidateData(k Kind, data []byte) error {
	compileOnce.Do(compileSchemas)
	if compileErr != nil {
		return compileErr
	}
	if _, ok := compiled[k.Type]; !ok {
		return fmt.Errorf("%w: no schema for %q", ErrInvalid, k.Type)
	}
	if _, _, ok := Conforms(k, data); ok {
		return nil
	}
	_, err := ValidateDataValue(k, data)
	return err
}

// ValidateDataValue is ValidateData that also returns the parsed payload
// (see ParseData), so a caller that needs fields of the payload parses the
// bytes once. It always runs the general validator (no Conforms shortcut).
func ValidateDataValue(k Kind, data []byte) (any, error) {
	inst, err := ParseData(k, data)
	if err != nil {
		return nil, err
	}
	if err := ValidateValue(k, inst); err != nil {
		return nil, err
	}
	return inst, nil
}

// ParseData parses a payload of kind k the way the schema check reads it:
// JSON objects as map[string]any, numbers as json.Number. Errors wrap
// ErrInvalid.
func ParseData(k Kind, data []byte) (any, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s has no data", ErrInvalid, k.Name)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s data is not JSON: %v", ErrInvalid, k.Name, err)
	}
	return inst, nil
}

// ValidateValue checks a payload parsed by ParseData against its kind's
// schema (compiled once per process). Errors are those of ValidateData.
func ValidateValue(k Kind, inst any) error {
	compileOnce.Do(compileSchemas)
	if compileErr != nil {
		return compileErr
	}
	s, ok := compiled[k.Type]
	if !ok {
		return fmt.Errorf("%w: no schema for %q", ErrInvalid, k.Type)
	}
	if err := s.Validate(inst); err != nil {
		field, detail := flattenSchemaError(err)
		return &SchemaError{Kind: k.Name, Field: field, Detail: detail}
	}
	return nil
}

// validatedKey identifies one event's data buffer (its first byte and
// length) and type: the runner decodes every delivery into a fresh buffer,
// so while the runner holds the mark, no other event has the same key.
type validatedKey struct {
	p   *byte
	n   int
	typ string
}

var validated sync.Map // validatedKey -> struct{}

func keyOf(e Event) (validatedKey, bool) {
	d := e.Data()
	if len(d) == 0 {
		return validatedKey{}, false
	}
	return validatedKey{p: &d[0], n: len(d), typ: e.Type()}, true
}

// MarkValidated records that e's data has just been checked against its
// kind's schema, so Payload and PayloadOf decode it without checking it a
// second time, until release is called. The stage runner marks each event
// it validated for the duration of the handler call; the mark is tied to
// e's data buffer, so a copy of e with other data is checked as usual.
func MarkValidated(e Event) (release func()) {
	k, ok := keyOf(e)
	if !ok {
		return func() {}
	}
	validated.Store(k, struct{}{})
	return func() { validated.Delete(k) }
}

// isValidated reports whether e's data is marked validated (MarkValidated).
func isValidated(e Event) bool {
	k, ok := keyOf(e)
	if !ok {
		return false
	}
	_, ok = validated.Load(k)
	return ok
}

// SchemaError is a payload that violates its kind's JSON Schema. It matches
// errors.Is(err, ErrInvalid).
type SchemaError struct {
	// Kind is the event kind's name, e.g. "CampaignRequested".
	Kind string
	// Field is the first offending field as a path into the payload, in
	// the FieldError style: "brief.budget_micros", "brief.channels[3]";
	// empty for the payload as a whole.
	Field string
	// Detail lists every violation ("/brief/budget_micros: got number,
	// want integer; ...").
	Detail string
}

// Error renders "<Kind> violates its schema: <detail>".
func (e *SchemaError) Error() string { return e.Kind + " violates its schema: " + e.Detail }

// Is lets errors.Is(err, ErrInvalid) match a SchemaError.
func (e *SchemaError) Is(target error) bool { return target == ErrInvalid }

// AsSchemaError extracts the schema violation, if err carries one.
func AsSchemaError(err error) (*SchemaError, bool) {
	var se *SchemaError
	if errors.As(err, &se) {
		return se, true
	}
	return nil, false
}

// fieldPath renders a JSON pointer's tokens as "a.b[3].c".
func fieldPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil && b.Len() > 0 {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}

var englishPrinter = message.NewPrinter(language.English)

// flattenSchemaError lists every leaf violation and names the first one's
// field (a missing property is named itself, not its parent).
func flattenSchemaError(err error) (field, detail string) {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return "", err.Error()
	}
	var parts []string
	first := true
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			parts = append(parts, "/"+strings.Join(e.InstanceLocation, "/")+": "+e.ErrorKind.LocalizedString(englishPrinter))
			if first {
				first = false
				loc := e.InstanceLocation
				if r, ok := e.ErrorKind.(*jskind.Required); ok && len(r.Missing) > 0 {
					loc = append(append([]string(nil), loc...), r.Missing[0])
				}
				field = fieldPath(loc)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return field, strings.Join(parts, "; ")
}

// GenerateSchema renders the JSON Schema (draft 2020-12) of a kind's payload
// from its Go type: json tags give names, fields without omitempty are
// required, desc tags become descriptions.
func GenerateSchema(k Kind) ([]byte, error) {
	t := reflect.TypeOf(k.NewPayload()).Elem()
	s := schemaOf(t, "")
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = SchemaBaseURI + k.SchemaFile()
	s["title"] = k.Name
	s["description"] = k.Doc + " CloudEvents type " + k.Type + ", NATS subject " + k.Subject + ".<campaign_id>."
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	timeType = reflect.TypeOf(time.Time{})
	enumType = reflect.TypeOf((*Enum)(nil)).Elem()
)

// Enum is implemented by the contract's closed string vocabularies (tiers,
// trust levels, outcomes, statuses, ...). The schema generator turns it into
// a JSON Schema enum, so the published enums cannot drift from the Go types.
type Enum interface {
	EnumValues() []string
}

func schemaOf(t reflect.Type, jsonName string) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Implements(enumType):
		return map[string]any{"type": "string", "enum": reflect.Zero(t).Interface().(Enum).EnumValues()}
	}
	switch t.Kind() {
	case reflect.String:
		if jsonName == "campaign_id" {
			return map[string]any{"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
		}
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64, reflect.Float32:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": []string{"array", "null"}, "items": schemaOf(t.Elem(), "")}
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return map[string]any{"type": []string{"object", "null"}}
		}
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": schemaOf(t.Elem(), "")}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			ps := schemaOf(f.Type, name)
			if d := f.Tag.Get("desc"); d != "" {
				ps["description"] = d
			}
			props[name] = ps
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
		}
		s := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}
