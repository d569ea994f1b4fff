package bus

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/pkg/events"
)

// The decode rules every stage applies, in the runner, before any handler
// sees an event; and the same schema and size rules at publish, so nothing
// invalid reaches the stream.

// OutputError is an event a producer tried to publish that breaks the
// contract: it violates its kind's schema, is above events.MaxEventBytes or
// has an unknown type. It matches errors.Is(err, events.ErrInvalid). In the
// runner it is the producing handler's error: logged at ERROR, the input
// retried with backoff, then dead-lettered with this message as the reason.
type OutputError struct {
	Kind string // the output's kind name (or type, when unknown)
	ID   string // the output's event id
	Err  error  // the violation
}

// Error renders "output <Kind> violates its schema: ..." (or "is N bytes ...").
func (e *OutputError) Error() string { return "output " + e.Err.Error() }

// Unwrap exposes the violation (a *events.SchemaError or ErrInvalid).
func (e *OutputError) Unwrap() error { return e.Err }

// msgSize is the size the size limit counts: the data plus every header
// ("Key: value\r\n").
func msgSize(h nats.Header, data []byte) int {
	n := len(data)
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// checkOut validates an event before it is published: a known kind, a
// payload conforming to the kind's schema with the subject's campaign id,
// and the encoded message within events.MaxEventBytes. It returns the message to publish
// and its encoded form, to Release once the publish is acknowledged.
func (b *Bus) checkOut(e events.Event) (*nats.Msg, *events.Message, error) {
	k, ok := events.KindOf(e.Type())
	if !ok {
		return nil, nil, &OutputError{Kind: e.Type(), ID: e.ID(), Err: fmt.Errorf("%w: unknown type %q", events.ErrInvalid, e.Type())}
	}
	// One read of the bytes already encoded serves the schema check and
	// the campaign id check; nothing is marshalled again. The fast check
	// proves most events valid without a decoded copy; the rest get the
	// general validator's verdict and error.
	cid, hasCID, ok := events.Conforms(k, e.Data())
	if !ok {
		inst, err := events.ValidateDataValue(k, e.Data())
		if err != nil {
			return nil, nil, &OutputError{Kind: k.Name, ID: e.ID(), Err: err}
		}
		refs := refsOfValue(inst)
		cid, hasCID = refs.CampaignID, refs.HasCampaignID
	}
	if hasCID && cid != e.Subject() {
		return nil, nil, &OutputError{Kind: k.Name, ID: e.ID(), Err: fmt.Errorf("%w: %s payload campaign_id %q differs from subject %q", events.ErrInvalid, k.Name, cid, e.Subject())}
	}
	em, err := events.Encode(e, k.SubjectFor(e.Subject()))
	if err != nil {
		return nil, nil, &OutputError{Kind: k.Name, ID: e.ID(), Err: fmt.Errorf("%s %w", k.Name, err)}
	}
	m := toMsg(em)
	if n := msgSize(m.Header, m.Data); n > events.MaxEventBytes {
		releaseMsg(m)
		em.Release()
		return nil, nil, &OutputError{Kind: k.Name, ID: e.ID(), Err: fmt.Errorf("%w: %s is %d bytes, above the %d-byte event limit", events.ErrInvalid, k.Name, n, events.MaxEventBytes)}
	}
	publishedValid.add(e.ID(), digest(k.Type, e.Subject(), m.Data))
	return m, em, nil
}

// publishedValid remembers the events this process validated on their way
// out (the most recent validCacheSize of them), by id and a digest of their
// type, subject and data: when a stage of the same process consumes one of
// them, the schema check has already been passed by exactly these bytes.
var publishedValid = newValidCache(validCacheSize)

const validCacheSize = 1 << 16

type validCache struct {
	mu   sync.Mutex
	m    map[string][32]byte
	ring []string // insertion order, for eviction
	next int
}

func newValidCache(n int) *validCache {
	return &validCache{m: make(map[string][32]byte, n), ring: make([]string, n)}
}

func (c *validCache) add(id string, sum [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		c.m[id] = sum
		return
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.m, old)
	}
	c.ring[c.next] = id
	c.next = (c.next + 1) % len(c.ring)
	c.m[id] = sum
}

func (c *validCache) has(id string, sum [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	got, ok := c.m[id]
	return ok && got == sum
}

// digest identifies an event's content for publishedValid.
func digest(typ, subject string, data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(data)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// payloadRefs are the fields the bus reads from any payload, generically,
// without knowing the stages' types.
type payloadRefs struct {
	CampaignID, SellerURL, SellerName, PackageID string
	HasCampaignID                                bool
	PackagesTotal                                int
}

// refsOf extracts campaign_id, seller.url or seller_url, seller.name or
// seller_name, and package.id from JSON data; a field of the wrong type is
// left empty.
func refsOf(data []byte) payloadRefs {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return payloadRefs{}
	}
	str := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	}
	var r payloadRefs
	if raw, ok := top["campaign_id"]; ok {
		r.HasCampaignID = true
		r.CampaignID = str(raw)
	}
	r.SellerURL, r.SellerName = str(top["seller_url"]), str(top["seller_name"])
	var obj map[string]json.RawMessage
	if raw, ok := top["seller"]; ok && json.Unmarshal(raw, &obj) == nil {
		if u := str(obj["url"]); u != "" {
			r.SellerURL = u
		}
		if n := str(obj["name"]); n != "" {
			r.SellerName = n
		}
	}
	obj = nil
	if raw, ok := top["package"]; ok && json.Unmarshal(raw, &obj) == nil {
		r.PackageID = str(obj["id"])
	}
	if raw, ok := top["packages_total"]; ok {
		_ = json.Unmarshal(raw, &r.PackagesTotal)
	}
	return r
}

// refsOfValue is refsOf on a payload already parsed by events.ParseData.
func refsOfValue(inst any) payloadRefs {
	top, ok := inst.(map[string]any)
	if !ok {
		return payloadRefs{}
	}
	str := func(v any) string { s, _ := v.(string); return s }
	var r payloadRefs
	if v, ok := top["campaign_id"]; ok {
		r.HasCampaignID = true
		r.CampaignID = str(v)
	}
	r.SellerURL, r.SellerName = str(top["seller_url"]), str(top["seller_name"])
	if obj, ok := top["seller"].(map[string]any); ok {
		if u := str(obj["url"]); u != "" {
			r.SellerURL = u
		}
		if n := str(obj["name"]); n != "" {
			r.SellerName = n
		}
	}
	if obj, ok := top["package"].(map[string]any); ok {
		r.PackageID = str(obj["id"])
	}
	if n, ok := top["packages_total"].(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			r.PackagesTotal = int(i)
		}
	}
	return r
}

// inbound applies the decode rules to a delivered message. On failure it
// returns the dead-letter reason and, for a schema-invalid
// CampaignRequested whose campaign id is still usable, the rejection to
// publish so its submitter hears back.
func inbound(h nats.Header, data []byte) (in events.Event, reason string, rej *events.CampaignRejected) {
	if n := msgSize(h, data); n > events.MaxEventBytes {
		return in, fmt.Sprintf("decode: event is %d bytes, above the %d-byte event limit", n, events.MaxEventBytes), nil
	}
	in, err := events.DecodeOwned(events.Header(h), data) // data is the delivery's own copy
	if err != nil {
		return in, "decode: " + err.Error(), nil
	}
	k, ok := events.KindOf(in.Type())
	if !ok {
		return in, fmt.Sprintf("decode: %v: unknown type %q", events.ErrInvalid, in.Type()), nil
	}
	if err := events.ValidateCampaignID(in.Subject()); err != nil {
		return in, "decode: " + err.Error(), nil
	}
	// An event this process validated when it published it (same id, type,
	// subject and bytes, same compiled schemas) is not checked again.
	if publishedValid.has(in.ID(), digest(k.Type, in.Subject(), in.Data())) {
		return in, "", nil
	}
	// Most events are proven valid without a decoded copy (events.Conforms);
	// the rest are parsed once for the campaign id check and the schema
	// check, whose error names the field.
	if cid, hasCID, ok := events.Conforms(k, in.Data()); ok {
		if hasCID && cid != in.Subject() {
			return in, fmt.Sprintf("decode: %v: payload campaign_id %q differs from subject %q", events.ErrInvalid, cid, in.Subject()), nil
		}
		return in, "", nil
	}
	inst, err := events.ParseData(k, in.Data())
	if err == nil {
		refs := refsOfValue(inst)
		if refs.HasCampaignID && refs.CampaignID != in.Subject() {
			return in, fmt.Sprintf("decode: %v: payload campaign_id %q differs from subject %q", events.ErrInvalid, refs.CampaignID, in.Subject()), nil
		}
		err = events.ValidateValue(k, inst)
	}
	if err != nil {
		reason = "decode: " + err.Error()
		if k.Type == events.KindCampaignRequested.Type {
			rej = &events.CampaignRejected{CampaignID: in.Subject(), Reason: truncate(err.Error(), 1024)}
			if se, ok := events.AsSchemaError(err); ok {
				rej.Field = se.Field
			}
		}
		return in, reason, rej
	}
	return in, "", nil
}

// resolveDeadLetter publishes what a dead letter means for its campaign
// before the event is terminated: the rejection of a schema-invalid
// CampaignRequested (rej), and a SellerSkipped (code dead_lettered) for a
// dead-lettered SellerFound, PackageFound or QuoteReady, so the campaign does
// not wait for that seller (or package) for ever. Both have ids derived from
// the dead-lettered event's id, so running this twice publishes each once.
// Events whose campaign is unclear (payload campaign_id differs from the
// subject) or that name no seller resolve nothing.
func (b *Bus) resolveDeadLetter(ctx context.Context, stage string, h nats.Header, data []byte, reason string, rej *events.CampaignRejected) error {
	in, err := events.DecodeOwned(events.Header(h), data) // data is the delivery's own copy
	if err != nil || in.ID() == "" || events.ValidateCampaignID(in.Subject()) != nil {
		return nil
	}
	var outs []events.Event
	if rej != nil {
		e, err := events.Derive(in, events.KindCampaignRejected, stage, "rejected", *rej)
		if err != nil {
			return err
		}
		outs = append(outs, e)
	}
	k, _ := events.KindOf(in.Type())
	switch k.Type {
	case events.KindSellerFound.Type, events.KindPackageFound.Type, events.KindQuoteReady.Type:
		refs := refsOf(in.Data())
		if refs.SellerURL == "" || (refs.HasCampaignID && refs.CampaignID != in.Subject()) {
			break
		}
		sk := events.SellerSkipped{
			CampaignID: in.Subject(), SellerURL: refs.SellerURL, SellerName: refs.SellerName, Stage: stage,
			Code:   events.SkipDeadLettered,
			Reason: truncate(fmt.Sprintf("%s dead-lettered %s %s: %s", stage, k.Name, in.ID(), reason), 1024),
		}
		if k.Type != events.KindSellerFound.Type {
			sk.PackageID, sk.PackagesTotal = refs.PackageID, refs.PackagesTotal
		}
		e, err := events.New(events.KindSellerSkipped, events.ChildID(in.ID(), stage, events.SkipDeadLettered), stage, in.Subject(), sk)
		if err != nil {
			return err
		}
		if tp := events.TraceparentOf(in); tp != "" {
			e.SetExtension(events.TraceparentExt, tp)
		}
		outs = append(outs, e)
	}
	for _, o := range outs {
		if err := b.Publish(ctx, o); err != nil {
			var oe *OutputError
			if errors.As(err, &oe) {
				// It can never be published (a seller URL too long for the
				// schema or size limit): say so, and let the dead letter stand.
				b.Log.Error().Err(err).Str("stage", stage).Str("event_id", in.ID()).Msg("dead letter's resolution is invalid; not published")
				continue
			}
			return err
		}
	}
	return nil
}
