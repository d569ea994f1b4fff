package events

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Arena holds the memory of the events a stage builds while handling one
// input: each event's CloudEvents context, extensions and JSON data. Once
// those events are published (the bus waits for the stream's
// acknowledgements), Release hands the memory to the events built for later
// inputs. A fan-out stage builds one event per seller or per package, about
// 1.5 KB each; without an arena every one of them is that much garbage as
// soon as it is stored.
//
// The events an arena builds are ordinary events, equal in every field and
// on the wire to Derive's, but they belong to the handling: nothing may keep
// or read them after Release. The stage runner makes one arena per input
// and releases it only after every output is acknowledged; handlers reach
// it with ArenaFrom. A nil *Arena builds with Derive, so a handler called
// outside the runner (tests, tools) gets events of its own.
type Arena struct {
	mu    sync.Mutex
	built []*arenaEvent
}

// arenaEvent is the memory of one event: the context and the values it
// points to, and the data with the encoder that writes it.
type arenaEvent struct {
	ctx         event.EventContextV1
	time        types.Timestamp
	subject     string
	contentType string
	ext         map[string]any
	data        []byte
	enc         *json.Encoder // writes into data (Write below)
}

// Write appends to the event's data: the JSON encoder's destination.
func (a *arenaEvent) Write(p []byte) (int, error) {
	a.data = append(a.data, p...)
	return len(p), nil
}

// maxArenaData is the largest data buffer kept for reuse: a discovery's
// DiscoveryCompleted lists every seller and may be far larger than the
// events that follow; such a buffer is left to the collector.
const maxArenaData = 16 << 10

var (
	arenas      = sync.Pool{New: func() any { return new(Arena) }}
	arenaEvents = sync.Pool{New: func() any {
		a := &arenaEvent{ext: make(map[string]any, 1)}
		a.enc = json.NewEncoder(a)
		return a
	}}
)

// NewArena returns an empty arena, recycled from a released one when it can.
func NewArena() *Arena { return arenas.Get().(*Arena) }

// Derive is events.Derive into the arena's memory (plain Derive when a is
// nil). Payloads that are raw bytes ([]byte) or nil are built by Derive too:
// their data is the caller's, not the arena's.
func (a *Arena) Derive(parent Event, k Kind, stage, key string, data any) (Event, error) {
	if a == nil {
		return Derive(parent, k, stage, key, data)
	}
	switch data.(type) {
	case nil, []byte:
		return Derive(parent, k, stage, key, data)
	}
	ev := arenaEvents.Get().(*arenaEvent)
	e, err := build(k, ChildID(parent.ID(), stage, key), stage, parent.Subject(), data, traceOf(parent), ev)
	if err != nil {
		arenaEvents.Put(ev)
		return Event{}, err
	}
	a.mu.Lock()
	a.built = append(a.built, ev)
	a.mu.Unlock()
	return e, nil
}

// Release hands the memory of every event the arena built, and the arena
// itself, to later builds. The events must not be used afterwards. Release
// on a nil *Arena does nothing.
func (a *Arena) Release() {
	if a == nil {
		return
	}
	a.mu.Lock()
	for i, ev := range a.built {
		if cap(ev.data) <= maxArenaData {
			arenaEvents.Put(ev)
		}
		a.built[i] = nil
	}
	a.built = a.built[:0]
	a.mu.Unlock()
	arenas.Put(a)
}

// fill makes ev the event's memory: e's context is ev's, with the given
// attributes, and data is encoded into ev's buffer exactly as json.Marshal
// (and so the CloudEvents SDK's SetData) would encode it.
func (ev *arenaEvent) fill(e *Event, k Kind, id string, src types.URIRef, campaignID string, data any, traceparent string) error {
	ev.subject, ev.contentType = campaignID, event.ApplicationJSON
	ev.time = types.Timestamp{Time: nowUTC()}
	clear(ev.ext)
	ev.ext[TraceparentExt] = traceparent
	ev.ctx = event.EventContextV1{ID: id, Source: src, Type: k.Type, Subject: &ev.subject, Time: &ev.time,
		DataContentType: &ev.contentType, Extensions: ev.ext}
	ev.data = ev.data[:0]
	if err := ev.enc.Encode(data); err != nil {
		return err
	}
	// The encoder ends each value with a newline, which Marshal does not.
	ev.data = ev.data[:len(ev.data)-1]
	*e = Event{Context: &ev.ctx, DataEncoded: ev.data}
	return nil
}

type arenaKey struct{}

// WithArena returns ctx carrying a, for the handler's ArenaFrom.
func WithArena(ctx context.Context, a *Arena) context.Context {
	return context.WithValue(ctx, arenaKey{}, a)
}

// ArenaFrom is the arena ctx carries (WithArena), or nil.
func ArenaFrom(ctx context.Context) *Arena {
	a, _ := ctx.Value(arenaKey{}).(*Arena)
	return a
}
