// Package adcpschema validates AdCP 3.1 documents (tool arguments and MCP
// structuredContent envelopes) against the published JSON Schemas in the
// repository's contracts/adcp/<version>/. The schemas' absolute $refs
// ("/schemas/3.1.19/core/...") are mapped onto that folder by a loader, so no
// network access is needed.
package adcpschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dealflow/dealflow/internal/contracts"
)

// Version is the AdCP schema release this repository speaks.
const Version = "3.1.19"

// base is the URL prefix the schemas are registered under; their $ids and
// $refs are the path part ("/schemas/3.1.19/...").
const base = "https://adcontextprotocol.org"

// Validator compiles schemas on first use and is safe for concurrent use.
type Validator struct {
	dir    string
	prefix string // "/schemas/<version>/"
	tools  map[string]Tool

	mu       sync.Mutex
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

// Tool is a manifest entry: the schema files of one task.
type Tool struct {
	Protocol       string   `json:"protocol"`
	Mutating       bool     `json:"mutating"`
	RequestSchema  string   `json:"request_schema"`
	ResponseSchema string   `json:"response_schema"`
	AsyncSchemas   []string `json:"async_response_schemas"`
}

// Find locates the schema folder of Version in the repository's contracts
// folder (contracts/adcp/<Version>, see internal/contracts).
func Find() (string, error) {
	dir, err := contracts.Path("adcp/" + Version)
	if err != nil {
		return "", fmt.Errorf("adcpschema: %w", err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", errors.New("adcpschema: " + dir + " is not a folder")
	}
	return dir, nil
}

// Load reads the manifest of the schema folder dir (…/adcp/3.1.19).
func Load(dir string) (*Validator, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("adcpschema: %w", err)
	}
	var m struct {
		Version string          `json:"adcp_version"`
		Tools   map[string]Tool `json:"tools"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("adcpschema: manifest: %w", err)
	}
	if m.Version == "" {
		m.Version = filepath.Base(dir)
	}
	v := &Validator{dir: dir, prefix: "/schemas/" + m.Version + "/", tools: m.Tools, compiled: map[string]*jsonschema.Schema{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	c.UseRegexpEngine(regexpEngine)
	c.UseLoader(jsonschema.SchemeURLLoader{"https": fileLoader{v}})
	v.compiler = c
	return v, nil
}

// LoadDefault is Load(Find()).
func LoadDefault() (*Validator, error) {
	dir, err := Find()
	if err != nil {
		return nil, err
	}
	return Load(dir)
}

// Dir is the schema folder.
func (v *Validator) Dir() string { return v.dir }

// Tool returns the manifest entry of a task.
func (v *Validator) Tool(name string) (Tool, bool) {
	t, ok := v.tools[name]
	return t, ok
}

type fileLoader struct{ v *Validator }

// Load maps https://adcontextprotocol.org/schemas/<version>/x.json to dir/x.json.
func (l fileLoader) Load(url string) (any, error) {
	rest, ok := strings.CutPrefix(url, base+l.v.prefix)
	if !ok || strings.Contains(rest, "..") {
		return nil, fmt.Errorf("adcpschema: schema %s is outside %s", url, l.v.prefix)
	}
	f, err := os.Open(filepath.Join(l.v.dir, filepath.FromSlash(rest)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// schema compiles (once) the schema at rel, a path inside the folder such as
// "media-buy/get-products-request.json".
func (v *Validator) schema(rel string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.compiled[rel]; ok {
		return s, nil
	}
	s, err := v.compiler.Compile(base + v.prefix + rel)
	if err != nil {
		return nil, fmt.Errorf("adcpschema: compile %s: %w", rel, err)
	}
	v.compiled[rel] = s
	return s, nil
}

// Validate checks doc (JSON bytes, json.RawMessage or any value that
// marshals to JSON) against the schema file rel.
func (v *Validator) Validate(rel string, doc any) error {
	s, err := v.schema(rel)
	if err != nil {
		return err
	}
	inst, err := instance(doc)
	if err != nil {
		return err
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("adcpschema: %s: %w", rel, err)
	}
	return nil
}

// ValidateRequest checks the arguments of a tools/call of task tool.
func (v *Validator) ValidateRequest(tool string, doc any) error {
	t, ok := v.tools[tool]
	if !ok || t.RequestSchema == "" {
		return fmt.Errorf("adcpschema: no request schema for tool %q", tool)
	}
	return v.Validate(t.RequestSchema, doc)
}

// ValidateResponse checks a tool result's structuredContent (the flat MCP
// envelope) against the task's response schema; an interim status
// (submitted, working, input-required) is also accepted against the task's
// matching async response schema.
func (v *Validator) ValidateResponse(tool string, doc any) error {
	t, ok := v.tools[tool]
	if !ok || t.ResponseSchema == "" {
		return fmt.Errorf("adcpschema: no response schema for tool %q", tool)
	}
	err := v.Validate(t.ResponseSchema, doc)
	if err == nil {
		return nil
	}
	inst, ierr := instance(doc)
	if ierr != nil {
		return ierr
	}
	if m, ok := inst.(map[string]any); ok {
		if st, _ := m["status"].(string); st != "" {
			for _, a := range t.AsyncSchemas {
				if strings.HasSuffix(a, "-"+st+".json") {
					if aerr := v.Validate(a, doc); aerr == nil {
						return nil
					}
				}
			}
		}
	}
	return err
}

// ValidateWebhook checks an MCP webhook payload (core/mcp-webhook-payload.json).
func (v *Validator) ValidateWebhook(doc any) error {
	return v.Validate("core/mcp-webhook-payload.json", doc)
}

// ValidateError checks an adcp_error object (core/error.json).
func (v *Validator) ValidateError(doc any) error {
	return v.Validate("core/error.json", doc)
}

func instance(doc any) (any, error) {
	var b []byte
	switch d := doc.(type) {
	case []byte:
		b = d
	case json.RawMessage:
		b = d
	case string:
		b = []byte(d)
	default:
		var err error
		if b, err = json.Marshal(doc); err != nil {
			return nil, fmt.Errorf("adcpschema: marshal: %w", err)
		}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("adcpschema: not JSON: %w", err)
	}
	return inst, nil
}

// PollingAliases are other names agents give the get_task_status tool; they
// share its schemas.
var PollingAliases = []string{"tasks_get", "get_task", "tasks/get"}

// CheckCall validates one recorded tools/call: the arguments against the
// task's request schema, and the structuredContent against the response
// schema, or, for an error result (isError), against the protocol envelope
// with its adcp_error against core/error.json.
func (v *Validator) CheckCall(tool string, args, result []byte, isError bool) error {
	for _, a := range PollingAliases {
		if tool == a {
			tool = "get_task_status"
		}
	}
	if err := v.ValidateRequest(tool, args); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if !isError {
		if err := v.ValidateResponse(tool, result); err != nil {
			return fmt.Errorf("response: %w", err)
		}
		return nil
	}
	if err := v.Validate("core/protocol-envelope.json", result); err != nil {
		return fmt.Errorf("error envelope: %w", err)
	}
	var env struct {
		ADCPError json.RawMessage `json:"adcp_error"`
	}
	if err := json.Unmarshal(result, &env); err != nil || len(env.ADCPError) == 0 {
		return errors.New("error envelope: adcp_error missing")
	}
	if err := v.ValidateError(env.ADCPError); err != nil {
		return fmt.Errorf("adcp_error: %w", err)
	}
	return nil
}

// regexpEngine is Go's regexp plus the one ECMA construct the 3.1 schemas
// use that RE2 lacks: a "(?!$)" lookahead right after an anchored literal
// prefix, as in core/sla-window.json's ISO 8601 duration
// "^P(?!$)(\d+Y)?...$". "^X(?!$)Y" matches s when "^XY" matches s and "^X$"
// does not (the lookahead only refuses the end of input right after X).
func regexpEngine(pattern string) (jsonschema.Regexp, error) {
	if re, err := regexp.Compile(pattern); err == nil {
		return re, nil
	}
	const la = "(?!$)"
	i := strings.Index(pattern, la)
	if i < 0 || !strings.HasPrefix(pattern, "^") || strings.Contains(pattern[i+len(la):], la) {
		return nil, fmt.Errorf("adcpschema: unsupported regexp %q", pattern)
	}
	prefix := pattern[:i]
	if regexp.QuoteMeta(pattern[1:i]) != pattern[1:i] {
		return nil, fmt.Errorf("adcpschema: unsupported regexp %q (lookahead after a non-literal)", pattern)
	}
	whole, err := regexp.Compile(prefix + pattern[i+len(la):])
	if err != nil {
		return nil, err
	}
	return lookahead{orig: pattern, whole: whole, bare: regexp.MustCompile(prefix + "$")}, nil
}

type lookahead struct {
	orig        string
	whole, bare *regexp.Regexp
}

func (l lookahead) MatchString(s string) bool {
	return l.whole.MatchString(s) && !l.bare.MatchString(s)
}
func (l lookahead) String() string { return l.orig }
