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

// CompileSchemas compiles the embedded schemas now instead of on the first
// validation, so a process pays for it at start (not inside its first
// campaign) and a broken schema fails the start. It is safe to call more
// than once.
func CompileSchemas() error {
	compileOnce.Do(compileSchemas)
	return compileErr
}

// ValidateData checks a payload against its kind's JSON Schema, for JSON
// from outside the pipeline (an API body, a file, an event another system
// published); a payload value is checked by its Validate instead. Errors
// wrap ErrInvalid and name the offending field.
func ValidateData(k Kind, data []byte) error {
	_, err := schemaCheck(k, data)
	return err
}

// validateBytes is ValidateData for the payload of an event of campaign
// subject: its campaign_id, when it has one, must be subject.
func validateBytes(k Kind, data []byte, subject string) error {
	inst, err := schemaCheck(k, data)
	if err != nil {
		return err
	}
	top, _ := inst.(map[string]any)
	if v, ok := top["campaign_id"]; ok {
		if id, _ := v.(string); id != subject {
			return &SchemaError{Kind: k.Name, Field: "campaign_id", Detail: fmt.Sprintf("payload campaign_id %q differs from subject %q", id, subject)}
		}
	}
	return nil
}

// schemaCheck parses data as the schema check reads it (objects as
// map[string]any, numbers as json.Number) and checks it against k's
// schema, compiled once per process.
func schemaCheck(k Kind, data []byte) (any, error) {
	compileOnce.Do(compileSchemas)
	if compileErr != nil {
		return nil, compileErr
	}
	s, ok := compiled[k.Type]
	if !ok {
		return nil, fmt.Errorf("%w: no schema for %q", ErrInvalid, k.Type)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s has no data", ErrInvalid, k.Name)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %s data is not JSON: %v", ErrInvalid, k.Name, err)
	}
	if err := s.Validate(inst); err != nil {
		field, detail := flattenSchemaError(err)
		return nil, &SchemaError{Kind: k.Name, Field: field, Detail: detail}
	}
	return inst, nil
}

// SchemaError is a payload that breaks its kind's contract: it violates the
// kind's JSON Schema (or, as a value, its Validate), or its campaign_id is
// not the event's subject. It matches errors.Is(err, ErrInvalid).
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
