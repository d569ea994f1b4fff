package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/pkg/events"
)

// The decode rules every stage applies, in the runner, before any handler
// sees an event; and the size rule at publish, where the payload has
// already been checked (events.New and Derive check it as they make the
// event), so nothing invalid reaches the stream.

// OutputError is an event a producer tried to make or publish that breaks
// the contract: its payload violates its kind's schema (events.New and
// Derive refuse it with an *events.SchemaError, which the runner reports
// as an OutputError), it is above events.MaxEventBytes or it has an unknown
// type. It matches errors.Is(err, events.ErrInvalid). In the runner it is
// the producing handler's error: logged at ERROR, the input retried with
// backoff, then dead-lettered with this message as the reason.
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

// CheckEvent applies Publish's checks to e without publishing it: an error
// (an *OutputError wrapping events.ErrInvalid) means e can never be
// published, whatever the broker's state, so a caller can refuse the work
// that needs it before recording anything.
func CheckEvent(e events.Event) error {
	_, err := (*Bus)(nil).checkOut(e)
	return err
}

// checkOut checks an event before it is published: a known kind, a campaign
// id for its subject, and the encoded message within events.MaxEventBytes.
// Its payload was checked when it was made (events.New and Derive refuse a
// payload that breaks the contract) and is not read again here. It returns
// the message to publish.
func (b *Bus) checkOut(e events.Event) (*nats.Msg, error) {
	k, ok := events.KindOf(e.Type())
	if !ok {
		return nil, &OutputError{Kind: e.Type(), ID: e.ID(), Err: fmt.Errorf("%w: unknown type %q", events.ErrInvalid, e.Type())}
	}
	if err := events.ValidateCampaignID(e.Subject()); err != nil {
		return nil, &OutputError{Kind: k.Name, ID: e.ID(), Err: fmt.Errorf("%s %w", k.Name, err)}
	}
	em, err := events.Encode(e, k.SubjectFor(e.Subject()))
	if err != nil {
		return nil, &OutputError{Kind: k.Name, ID: e.ID(), Err: fmt.Errorf("%s %w", k.Name, err)}
	}
	m := toMsg(em)
	if n := msgSize(m.Header, m.Data); n > events.MaxEventBytes {
		return nil, &OutputError{Kind: k.Name, ID: e.ID(), Err: fmt.Errorf("%w: %s is %d bytes, above the %d-byte event limit", events.ErrInvalid, k.Name, n, events.MaxEventBytes)}
	}
	return m, nil
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

// inbound applies the decode rules to a delivered message and returns the
// event with its payload: a pointer to the kind's payload type, decoded
// strictly once and checked (events.Payload: exact member names, no name
// twice, Validate, the campaign_id of the subject). An event from outside
// the pipeline (fromOutside) is first held to its kind's JSON Schema, which
// also asks that every required member be present: a stage's payloads
// were checked as they were made and encoded with all their members, and a
// value that passes Validate is one a schema-valid payload could carry
// (events' FuzzValidateAgreesWithSchema), so the schema would add nothing
// but its cost there. On failure it returns the dead-letter reason and,
// for an invalid CampaignRequested whose campaign id is still usable, the
// rejection to publish so its submitter hears back.
func inbound(h nats.Header, data []byte) (in events.Event, payload any, reason string, rej *events.CampaignRejected) {
	if n := msgSize(h, data); n > events.MaxEventBytes {
		return in, nil, fmt.Sprintf("decode: event is %d bytes, above the %d-byte event limit", n, events.MaxEventBytes), nil
	}
	structured := isStructured(h)
	body := data
	if !structured {
		body = nil // binary mode: the attributes are all in the headers
	}
	in, err := events.Decode(events.Header(h), body)
	if err != nil {
		return in, nil, "decode: " + err.Error(), nil
	}
	if !structured && len(data) > 0 {
		// The body is the payload, and a delivery's bytes are its own (the
		// runner reads them, and acks, long after the client handed the
		// message over): the event takes them as they are, where Decode
		// would copy them (about 1 KB a delivery).
		in.DataEncoded = data
	}
	k, ok := events.KindOf(in.Type())
	if !ok {
		return in, nil, fmt.Sprintf("decode: %v: unknown type %q", events.ErrInvalid, in.Type()), nil
	}
	if err := events.ValidateCampaignID(in.Subject()); err != nil {
		return in, nil, "decode: " + err.Error(), nil
	}
	if fromOutside(h) {
		err = events.ValidateData(k, in.Data())
	}
	if err == nil {
		if payload, _, err = events.Payload(in); err != nil {
			// The schema's verdict, when it refuses the data too, names
			// every violation the way an outside producer reads them.
			if serr := events.ValidateData(k, in.Data()); serr != nil {
				err = serr
			}
		}
	}
	if err != nil {
		reason = "decode: " + err.Error()
		if k.Type == events.KindCampaignRequested.Type {
			rej = &events.CampaignRejected{CampaignID: in.Subject(), Reason: truncate(err.Error(), 1024)}
			if se, ok := events.AsSchemaError(err); ok {
				rej.Field = se.Field
			}
		}
		return in, nil, reason, rej
	}
	return in, payload, "", nil
}

// fromOutside reports whether a delivery was not published by a dealflow
// stage: a CloudEvent in structured mode (the bus publishes binary mode
// only) or one whose source is not a stage's (events.SourcePrefix). The
// stages' payloads were checked as they were made, and their encoding
// has every required member; an outside producer's may lack one, which
// only the schema notices.
func fromOutside(h nats.Header) bool {
	if isStructured(h) {
		return true
	}
	src := h["ce-source"]
	return len(src) == 0 || !strings.HasPrefix(src[0], events.SourcePrefix)
}

// isStructured reports a CloudEvent in structured mode, as events.Decode
// tells it: a Content-Type header (any case) starting with
// "application/cloudevents".
func isStructured(h nats.Header) bool {
	for k, v := range h {
		if strings.EqualFold(k, events.HeaderContentType) && len(v) > 0 && strings.HasPrefix(strings.ToLower(v[0]), "application/cloudevents") {
			return true
		}
	}
	return false
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
	in, err := events.Decode(events.Header(h), data)
	if err != nil || in.ID() == "" || events.ValidateCampaignID(in.Subject()) != nil {
		return nil
	}
	var outs []events.Event
	// add keeps a resolution to publish. One that breaks the contract can
	// never be published (events.New refuses it, or Publish: a seller URL
	// too long for the size limit): that is said, and the dead letter
	// stands.
	add := func(e events.Event, err error) error {
		var se *events.SchemaError
		if errors.As(err, &se) {
			b.Log.Error().Err(err).Str("stage", stage).Str("event_id", in.ID()).Msg("dead letter's resolution is invalid; not published")
			return nil
		}
		if err == nil {
			outs = append(outs, e)
		}
		return err
	}
	if rej != nil {
		if err := add(events.Derive(in, events.KindCampaignRejected, stage, "rejected", *rej)); err != nil {
			return err
		}
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
			Reason: events.ShortReason(fmt.Sprintf("%s dead-lettered %s %s: %s", stage, k.Name, in.ID(), reason)),
		}
		if k.Type != events.KindSellerFound.Type {
			sk.PackageID, sk.PackagesTotal = refs.PackageID, refs.PackagesTotal
		}
		e, err := events.New(events.KindSellerSkipped, events.ChildID(in.ID(), stage, events.SkipDeadLettered), stage, in.Subject(), sk)
		if err == nil {
			if tp := events.TraceparentOf(in); tp != "" {
				e.SetExtension(events.TraceparentExt, tp)
			}
		}
		if err := add(e, err); err != nil {
			return err
		}
	}
	if k.Type == events.KindLineApproved.Type {
		// A line that could not be handled still needs an outcome, or its
		// campaign waits for ever: reported unresolved (whether the seller
		// booked it is not known), its spend left reserved for a person
		// to settle with the seller.
		if la, err := events.PayloadOf[events.LineApproved](in, events.KindLineApproved); err == nil && la.CampaignID == in.Subject() {
			l := la.Line
			f := events.BookingFailed{CampaignID: la.CampaignID, LineKey: la.LineKey, PlanRevision: la.PlanRevision, SellerURL: l.SellerURL,
				Protocol: l.Protocol, PackageID: l.PackageID, QuoteID: l.QuoteID, Code: events.SkipDeadLettered, Unresolved: true, SpendMicros: l.SpendMicros,
				Reason: truncate(fmt.Sprintf("%s dead-lettered the line (%s); whether the seller booked it is not known: settle it with the seller", stage, reason), 1024)}
			e, err := events.Derive(in, events.KindBookingFailed, stage, events.SkipDeadLettered, f)
			if err := add(e, err); err != nil {
				return err
			}
		}
	}
	for _, o := range outs {
		if err := b.Publish(ctx, o); err != nil {
			var oe *OutputError
			if errors.As(err, &oe) {
				b.Log.Error().Err(err).Str("stage", stage).Str("event_id", in.ID()).Msg("dead letter's resolution is invalid; not published")
				continue
			}
			return err
		}
	}
	return nil
}
