package events

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	jsonv2 "github.com/go-json-experiment/json"
)

// Event is a CloudEvent; every pipeline event is one.
type Event = event.Event

// ErrInvalid marks an event that can never be processed: undecodable, missing
// CloudEvents attributes, unknown type, or a payload that violates its schema.
// The bus dead-letters such events instead of retrying them.
var ErrInvalid = errors.New("invalid event")

// TraceparentExt is the CloudEvents distributed-tracing extension attribute.
const TraceparentExt = "traceparent"

// SourcePrefix prefixes the CloudEvents source of events emitted by a stage.
const SourcePrefix = "/dealflow/"

// ChildID derives the id of an event emitted while handling parent. It is
// deterministic, so a redelivered input re-emits the same ids and JetStream's
// duplicate window (Nats-Msg-Id) drops the copies.
func ChildID(parentID, stage, key string) string {
	// Hashed from a stack buffer when the parts fit (ids, stage names and
	// keys are short): one call per event emitted.
	var buf [256]byte
	b := append(append(append(append(append(buf[:0], parentID...), 0), stage...), 0), key...)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

// NewID returns a random event id for events that start a chain.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// New builds an event of kind k for a campaign, with data as its JSON
// payload and a new trace (a random, sampled traceparent). It refuses to
// make an event that breaks the contract, with a *SchemaError naming the
// field: a value of k's payload type (or a pointer to one) must pass its
// Validate and name campaignID; any other data (a map, raw JSON) must
// conform to k's schema once encoded.
func New(k Kind, id, stage, campaignID string, data any) (Event, error) {
	return build(k, id, stage, campaignID, data, newTraceparent())
}

// Derive builds an event emitted by stage while handling parent: same campaign,
// deterministic id from (parent id, stage, key), and the parent's trace. The
// stage runner then replaces that traceparent with its own handling span's,
// so each hop is a child span of the one before. The payload is checked as
// New checks it.
func Derive(parent Event, k Kind, stage, key string, data any) (Event, error) {
	return build(k, ChildID(parent.ID(), stage, key), stage, parent.Subject(), data, traceOf(parent))
}

// traceOf is the traceparent a child of parent carries: the parent's, or
// a new trace when the parent has none.
func traceOf(parent Event) string {
	if tp := TraceparentOf(parent); tp != "" {
		return tp
	}
	return newTraceparent()
}

// build fills the CloudEvents 1.0 context directly rather than through the
// SDK's setters, which parse the source URL and concatenate a field name
// for each call: the stages build one event per seller and per package.
func build(k Kind, id, stage, campaignID string, data any, traceparent string) (Event, error) {
	if err := ValidateCampaignID(campaignID); err != nil {
		return Event{}, err
	}
	src, err := sourceOf(stage)
	if err != nil {
		return Event{}, fmt.Errorf("events: source of stage %q: %w", stage, err)
	}
	// The payload is checked as it is made: a value of the kind's payload
	// type by its Validate, anything else (a map, raw JSON) against the
	// kind's schema once encoded.
	typed, err := checkValue(k, data, campaignID)
	if err != nil {
		return Event{}, err
	}
	e := Event{Context: &event.EventContextV1{ID: strings.TrimSpace(id), Source: src, Type: k.Type, Subject: &campaignID,
		Time: &types.Timestamp{Time: nowUTC()}, Extensions: map[string]any{TraceparentExt: traceparent}}}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return Event{}, fmt.Errorf("events: encode %s payload: %w", k.Name, err)
	}
	if !typed {
		if err := validateBytes(k, e.Data(), campaignID); err != nil {
			return Event{}, err
		}
	}
	return e, nil
}

// checkValue checks data when it is a value (or a non-nil pointer to one)
// of a payload type: it must be k's, valid, and of campaign subject. typed
// is false for any other data, which is left to the schema.
func checkValue(k Kind, data any, subject string) (typed bool, err error) {
	p, ok := data.(payload)
	if !ok {
		return false, nil
	}
	t := reflect.TypeOf(data)
	if t.Kind() == reflect.Pointer {
		if reflect.ValueOf(data).IsNil() {
			return false, nil
		}
		t = t.Elem()
	}
	if t != k.typ {
		return true, &SchemaError{Kind: k.Name, Detail: fmt.Sprintf("a %s payload is not a %s", t.Name(), k.Name)}
	}
	return true, checkPayload(k, p, subject)
}

// nowUTC is an event's time.
func nowUTC() time.Time { return time.Now().UTC() }

// sources holds each stage's parsed CloudEvents source. Stages are few;
// past maxSources names (only tests make up many) a source is parsed anew.
var (
	sources    sync.Map // stage -> types.URIRef
	nSources   atomic.Int32
	maxSources = int32(64)
)

func sourceOf(stage string) (types.URIRef, error) {
	if v, ok := sources.Load(stage); ok {
		return v.(types.URIRef), nil
	}
	u, err := url.Parse(SourcePrefix + stage)
	if err != nil {
		return types.URIRef{}, err
	}
	ref := types.URIRef{URL: *u}
	if nSources.Add(1) <= maxSources {
		sources.Store(stage, ref)
	}
	return ref, nil
}

// TraceparentOf is the event's traceparent extension, or "" when it has
// none. It reads the extension in place (Event.Extensions copies them all).
func TraceparentOf(e Event) string {
	if e.Context == nil {
		return ""
	}
	v, err := e.Context.GetExtension(TraceparentExt)
	if err != nil {
		return ""
	}
	tp, _ := v.(string)
	return tp
}

// extensionsOf is the event's extensions, read in place when the context is
// the CloudEvents 1.0 one (always, for events made by New and Decode): the
// caller must not modify the map.
func extensionsOf(e Event) map[string]any {
	if v1, ok := e.Context.(*event.EventContextV1); ok {
		return v1.Extensions
	}
	return e.Extensions()
}

func newTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// Payload decodes e's data into a new value of its kind's payload type and
// checks it against the contract: a pointer to that type (for a DealBooked,
// a *DealBooked) with no error, or an error wrapping ErrInvalid. See
// PayloadOf.
func Payload(e Event) (any, Kind, error) {
	k, ok := KindOf(e.Type())
	if !ok {
		return nil, Kind{}, fmt.Errorf("%w: unknown type %q", ErrInvalid, e.Type())
	}
	p := k.NewPayload()
	if err := decodePayload(k, e, p); err != nil {
		return nil, k, err
	}
	return p, k, nil
}

// PayloadOf decodes e's payload into T after checking that e is of kind k,
// and checks the value against the contract. The decoding is strict where
// JSON is loose: member names match exactly (case included) and a name
// given twice is refused; members the type does not know are ignored, as
// the schemas allow. The value is then checked by its Validate (the
// schema's enums and patterns) and its campaign_id must be e's subject.
// Errors wrap ErrInvalid; a payload that breaks a rule is a *SchemaError
// naming the field.
func PayloadOf[T any](e Event, k Kind) (T, error) {
	var v T
	if e.Type() != k.Type {
		return v, fmt.Errorf("%w: type %q, want %q", ErrInvalid, e.Type(), k.Type)
	}
	if err := decodePayload(k, e, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// decodePayload decodes e's data into v (a pointer) strictly, then checks
// it: with its Validate when v is a payload type of the contract, else
// against k's schema.
func decodePayload(k Kind, e Event, v any) error {
	data := e.Data()
	if err := jsonv2.Unmarshal(data, v); err != nil {
		if len(data) == 0 {
			return fmt.Errorf("%w: %s has no data", ErrInvalid, k.Name)
		}
		return fmt.Errorf("%w: %s payload: %v", ErrInvalid, k.Name, err)
	}
	if p, ok := v.(payload); ok {
		return checkPayload(k, p, e.Subject())
	}
	return validateBytes(k, data, e.Subject())
}
