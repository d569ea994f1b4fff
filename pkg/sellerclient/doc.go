// Package sellerclient is the buyer's HTTP client to IAB Tech Lab seller
// agents and to agent registries. It speaks the wire contract as the real
// seller-agent (v2.4.2) behaves, not as its docs describe it, so the same code
// works against the sandbox seller and the reference one.
//
// Contract quirks it handles:
//
//   - Two money encodings. The v1 surfaces (/api/v1/quotes, /api/v1/deals,
//     /api/v1/negotiations/messages) use Money{amount_micros int, currency};
//     a JSON float there, even 20000000.0, is a 422, so Money decodes strictly
//     and DollarsToMicros rounds exactly like Python's round(x*1e6); Money
//     converts to and from the contract's market.Micros (Micros, FromMicros).
//     The media kit and package surfaces still use float dollars and display
//     strings ("$28-$42 CPM", see ParsePriceRange); PriceMicros converts
//     those prices to micros at the edge with market.MicrosFromDollars.
//   - Envelopes and status codes: quotes come back as {"quote":{...}}, deals as
//     {"deal":{...},"audience_plan_snapshot","audience_match_summary"}, both
//     with HTTP 200 (the IAB docs say 201; any 2xx is accepted).
//   - Idempotency: every v1 POST carries a caller-supplied idempotency_key; the
//     client refuses to send without one, marshals the body once and re-sends
//     the identical bytes on retry, so a retried POST can never create a second
//     quote, round or deal.
//   - Negotiation key precedence: the seller looks proposal_id, else
//     negotiation_id, else quote_id up as a proposal/quote id, so
//     negotiation_id alone (or with quote_id) is a 404. The client refuses a
//     negotiation_id without proposal_id, and a reject that carries a price.
//   - Tier comes from the API key (X-Api-Key, or Authorization: Bearer); the
//     media-kit reads also honour unverified buyer_tier/agency_id/advertiser_id
//     claims. A bad key is worse than none (401), so Auth{} is anonymous.
//   - Package views: the same Package type holds the public view (price_range
//     only) and the authenticated one (exact_price, floor_price, placements,
//     negotiation flags); Authenticated records that exact_price was present.
//     GET /media-kit/packages/{id} is always public; exact prices live at
//     GET /packages/{id}.
//   - Responses decode strictly, with github.com/go-json-experiment/json (the
//     encoding/json/v2 candidate): member names match exactly, a name comes
//     at most once per object, strings are valid UTF-8 and integers are
//     written as integers. A body that breaks one of these is ErrBadResponse.
//   - Error bodies come in four shapes: FastAPI 422 {"detail":[...]},
//     {"detail":"text"}, {"detail":{"error":code,"message":...}} and the shared
//     ErrorEnvelope; unhandled seller errors are a text/plain 500. All become
//     one *Error, classified with sentinels (ErrNotFound, ErrQuoteExpired,
//     ErrAlreadyBooked, ErrIdempotencyConflict, ...) for errors.Is.
//   - Agent cards are A2A cards: capabilities is an object, there is no
//     agent_id, and the path is /.well-known/agent-card.json with a fallback to
//     /.well-known/agent.json (what the reference seller serves).
//   - Registries: the simple API (/agents, /verify) and the IAB AAMP API
//     (/api/agents with a bearer token, {"success","data":{"agents"}} envelope,
//     numeric ids, nulls for unset lists). Capabilities are filtered on the
//     client for both (ANY, case-insensitive); a malformed record is skipped,
//     not the whole listing; the seller's trust word "approved" is the buyer's
//     "verified"; AAMP trust is verified iff verification_status is "active".
//
// Safety: URLs are normalised and must be http(s) with a host; loopback,
// private and link-local destinations are refused (also after DNS, at dial
// time) unless Config.AllowPrivate; redirects to another host are refused;
// bodies are capped (Config.MaxBodyBytes); retries happen only on 502/503/504
// and network timeouts, with exponential backoff and full jitter. No body a
// seller sends can make the client panic.
//
// Observability: every HTTP attempt is an OpenTelemetry client span
// (otelhttp, Config.TracerProvider or the global provider) and sends the
// W3C traceparent header; Config.Observe, when set, is told each attempt's
// operation (Operations), HTTP status or error class, and duration.
package sellerclient
