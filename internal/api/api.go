// Package api is the bookings HTTP API and the console it serves: campaigns
// are submitted, listed, followed (server-sent events), approved or rejected
// here, each change made through internal/campaign's transitions and
// published on the bus. It knows nothing of how the process is wired
// (internal/app), so it is tested with an httptest server alone.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/activator"
	"github.com/dealflow/dealflow/services/notifier"
	"github.com/dealflow/dealflow/services/reallocator"
)

// MaxBodyBytes is the largest request body the bookings API reads; a larger
// one is answered 413.
const MaxBodyBytes = 1 << 20

// ApproveRequest is the body of POST /bookings/{id}/approve. Lines are named
// by quote id, package id or product id (the reference's field); every id
// must name exactly one line of the proposed portfolio.
type ApproveRequest struct {
	QuoteIDs   []string `json:"approved_quote_ids"`
	PackageIDs []string `json:"approved_package_ids"`
	ProductIDs []string `json:"approved_product_ids"`
}

// RejectRequest is the optional body of POST /bookings/{id}/reject.
type RejectRequest struct {
	Reason string `json:"reason"`
}

// apiError is every error body: a stable code, the field when one is at
// fault, and a human detail.
type apiError struct {
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

// Publisher publishes pipeline events, reports whether it is connected and
// follows one campaign's events (internal/bus.Bus is one).
type Publisher interface {
	campaign.Publisher
	Ready() error
	// FollowFrom replays the campaign's events stored after stream
	// sequence afterSeq (0: all), then tails them, until fn returns false
	// or ctx ends.
	FollowFrom(ctx context.Context, campaignID string, afterSeq uint64, fn func(seq uint64, e events.Event) bool) error
	// FollowFromPending is FollowFrom passing also how many stored events
	// follow each one (0: caught up).
	FollowFromPending(ctx context.Context, campaignID string, afterSeq uint64, fn func(seq, pending uint64, e events.Event) bool) error
	// ReadCampaign calls fn with the campaign's stored events of the
	// kinds given, in stream order, and returns after the last one.
	ReadCampaign(ctx context.Context, campaignID string, kinds []events.Kind, fn func(seq uint64, e events.Event) bool) error
}

// WebhookStore holds each campaign's webhook, keyed by campaign id
// (bus.Store[notifier.Webhook] over dealflow_webhooks is one).
type WebhookStore interface {
	Get(ctx context.Context, campaignID string) (notifier.Webhook, bool, error)
	Put(ctx context.Context, campaignID string, w notifier.Webhook) error
	Update(ctx context.Context, campaignID string, fn func(w *notifier.Webhook, exists bool) (bool, error)) (notifier.Webhook, error)
}

// Options are the bookings API's optional parts.
type Options struct {
	// Webhooks stores campaigns' webhooks; nil refuses "notify" with 503.
	Webhooks WebhookStore
	// Guard decides which webhook URLs are accepted (the seller URLs'
	// guard: --allow-private); the zero Guard accepts public addresses only.
	Guard sellerclient.Guard
	// Heartbeat is the SSE comment interval (default 15s).
	Heartbeat time.Duration
	// TracerProvider makes the API's spans (nil: the global one).
	TracerProvider trace.TracerProvider
	// Seats are the deals' buyer seat records (the IAB Deals API buyer
	// side, deals.go); nil answers the /deals routes 503. SellerTokens are
	// the sellers' push tokens (none: pushes are refused);
	// StatusTokenRequired makes the status route need one too.
	Seats *activator.Seats
	// Reallocations are the reallocator's records; nil answers the
	// /bookings/{id}/reallocations routes 503.
	Reallocations       *reallocator.Records
	SellerTokens        *SellerTokens
	StatusTokenRequired bool
	DealMetrics         DealMetrics
	// Ledger is the booking ledger (lines.go): GET /bookings/{id} shows
	// each booked line's state and budget from it, and the line change
	// routes check lines in it; nil answers those routes 503.
	Ledger LedgerStore
}

type server struct {
	pub       Publisher
	campaigns *campaign.Store
	key       string
	log       zerolog.Logger
	now       func() time.Time
	opts      Options
}

// Probes adds the /livez and /readyz probes to mux, as both the bookings
// API and the metrics listener serve them. Readiness is ready() (connected
// to NATS); liveness deliberately does not check it, to avoid restart
// storms during a broker blip.
func Probes(mux *http.ServeMux, ready func() error) {
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "not_ready", Detail: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// New returns the bookings API handler. Every campaign change goes
// through the campaign state machine (internal/campaign): the API never
// writes a record itself.
func New(pub Publisher, campaigns *campaign.Store, apiKey string, log zerolog.Logger, o Options) http.Handler {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	a := &server{pub: pub, campaigns: campaigns, key: apiKey, log: log, now: func() time.Time { return time.Now().UTC() }, opts: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	})
	Probes(mux, func() error { return pub.Ready() })
	mux.HandleFunc("POST /bookings", a.create)
	mux.HandleFunc("GET /bookings", a.list)
	mux.HandleFunc("GET /bookings/{id}", a.get)
	mux.HandleFunc("POST /bookings/{id}/approve", a.approve)
	mux.HandleFunc("POST /bookings/{id}/approve-all", a.approveAll)
	mux.HandleFunc("POST /bookings/{id}/reject", a.reject)
	mux.HandleFunc("GET /bookings/{id}/events", a.events)
	mux.HandleFunc("GET /bookings/{id}/delivery", a.delivery)
	mux.HandleFunc("POST /bookings/{id}/lines/{line_key}/pause", a.pauseLine)
	mux.HandleFunc("POST /bookings/{id}/lines/{line_key}/resume", a.resumeLine)
	mux.HandleFunc("POST /bookings/{id}/lines/{line_key}/cancel", a.cancelLine)
	mux.HandleFunc("POST /bookings/{id}/cancel", a.cancelCampaign)
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /api", serveAPIPage)
	mux.HandleFunc("GET /bookings/{id}/deals.csv", a.dealsCSV)
	mux.HandleFunc("GET /bookings/{id}/reallocations", a.listReallocations)
	mux.HandleFunc("POST /bookings/{id}/reallocations/{revision}/approve", a.approveReallocation)
	mux.HandleFunc("POST /bookings/{id}/reallocations/{revision}/reject", a.rejectReallocation)
	mux.HandleFunc("POST /deals", a.pushDeal)
	mux.HandleFunc("GET /deals/{deal_id}/status", a.dealStatus)
	mux.HandleFunc("GET /deals", a.listDeals)
	mux.HandleFunc("GET /deals/{deal_id}", a.getDeal)
	mux.HandleFunc("POST /deals/{deal_id}/approve", a.approveDeal)
	mux.HandleFunc("POST /deals/{deal_id}/reject", a.rejectDeal)
	consoleHandlers(mux)
	return jsonErrors(a.auth(mux))
}

func (a *server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.key != "" && !public(r.URL.Path) && !sellerRoute(r) &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("X-API-Key")), []byte(a.key)) != 1 {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthorized", Detail: "Invalid or missing API key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// public says whether a path is served without the API key: the health
// probes, the API's own description, and the console's page and static
// assets (which hold no data).
func public(path string) bool {
	switch path {
	case "/health", "/livez", "/readyz", "/", "/openapi.json", "/api":
		return true
	}
	return strings.HasPrefix(path, "/static/")
}

// jsonErrors turns the mux's plain-text 404 and 405 answers into the API's
// JSON error body.
func jsonErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&errorRewriter{ResponseWriter: w}, r)
	})
}

type errorRewriter struct {
	http.ResponseWriter
	swallow bool
}

func (e *errorRewriter) WriteHeader(status int) {
	if (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) &&
		strings.HasPrefix(e.Header().Get("Content-Type"), "text/plain") {
		e.swallow = true
		e.Header().Del("X-Content-Type-Options")
		body := apiError{Error: "not_found", Detail: "no such route: see GET /openapi.json"}
		if status == http.StatusMethodNotAllowed {
			body = apiError{Error: "method_not_allowed", Detail: "method not allowed; allowed: " + e.Header().Get("Allow")}
		}
		writeJSON(e.ResponseWriter, status, body)
		return
	}
	e.ResponseWriter.WriteHeader(status)
}

func (e *errorRewriter) Write(b []byte) (int, error) {
	if e.swallow {
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the SSE
// handler lifts the read deadline through it).
func (e *errorRewriter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

// Flush lets streaming handlers flush through the rewriter.
func (e *errorRewriter) Flush() {
	if f, ok := e.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// httpError is an apiError with its status.
type httpError struct {
	status int
	body   apiError
}

func (e *httpError) write(w http.ResponseWriter) { writeJSON(w, e.status, e.body) }

// decodeBody reads a JSON body strictly: it must be declared JSON (415),
// fit MaxBodyBytes (413), be one JSON document (400 for syntax errors and
// trailing data) with no unknown fields, and have the right types (422
// naming the field and the JSON type wanted, never a Go type).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) *httpError {
	return decodeBodyWith(w, r, v, true)
}

// decodeBodyWith is decodeBody; with strict false unknown members are
// ignored (a seller's pushed deal, whose newer versions may add some).
func decodeBodyWith(w http.ResponseWriter, r *http.Request, v any, strict bool) *httpError {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &httpError{http.StatusUnsupportedMediaType, apiError{Error: "unsupported_media_type", Field: "Content-Type",
			Detail: "the body must be JSON, sent with Content-Type: application/json"}}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if isTooLarge(err) {
			return &httpError{http.StatusRequestEntityTooLarge, apiError{Error: "too_large", Detail: fmt.Sprintf("the body is over %d bytes", MaxBodyBytes)}}
		}
		return &httpError{http.StatusBadRequest, apiError{Error: "bad_request", Detail: "the body could not be read"}}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	err = dec.Decode(v)
	if err == nil {
		if err = dec.Decode(&struct{}{}); err == io.EOF {
			return nil
		} else if err == nil || !isTooLarge(err) {
			return &httpError{http.StatusBadRequest, apiError{Error: "bad_request", Detail: "trailing data after the JSON document"}}
		}
	}
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
	)
	switch {
	case isTooLarge(err):
		return &httpError{http.StatusRequestEntityTooLarge, apiError{Error: "too_large", Detail: fmt.Sprintf("the body is over %d bytes", MaxBodyBytes)}}
	case errors.As(err, &te):
		return &httpError{http.StatusUnprocessableEntity, apiError{Error: "validation", Field: te.Field, Detail: "must be " + jsonTypeName(te.Type)}}
	case errors.As(err, &se):
		return &httpError{http.StatusBadRequest, apiError{Error: "bad_request", Detail: fmt.Sprintf("invalid JSON at byte %d", se.Offset)}}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &httpError{http.StatusBadRequest, apiError{Error: "bad_request", Detail: "the JSON document is empty or truncated"}}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if full := unknownFieldPath(body, v); full != "" {
			f = full
		}
		return &httpError{http.StatusUnprocessableEntity, apiError{Error: "validation", Field: f, Detail: "is not a known field"}}
	}
	return &httpError{http.StatusBadRequest, apiError{Error: "bad_request", Detail: "invalid JSON body"}}
}

// unknownFieldPath is the full path ("brief.evil", "buyer.x", "sellers[2]")
// of the first unknown member of body for v's type, found by decoding it
// again with go-json-experiment/json, whose errors carry the JSON Pointer
// (encoding/json names only the leaf). Names match case-insensitively and
// duplicates are allowed, as encoding/json decodes them. "" when that
// decoder stops at something else first.
func unknownFieldPath(body []byte, v any) string {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return ""
	}
	err := jsonv2.Unmarshal(body, reflect.New(t.Elem()).Interface(), jsonv2.RejectUnknownMembers(true),
		jsonv2.MatchCaseInsensitiveNames(true), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var se *jsonv2.SemanticError
	if !errors.As(err, &se) || !errors.Is(se.Err, jsonv2.ErrUnknownName) {
		return ""
	}
	var b strings.Builder
	for tok := range se.JSONPointer.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func isTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// jsonTypeName names the JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another JSON type"
}

// storeTimeout bounds the campaign store calls (and the publications) of
// one request, so a broker that is down gives a prompt 503, not a hang.
const storeTimeout = 5 * time.Second

// storeContext is the request's context bounded by storeTimeout.
func storeContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), storeTimeout)
}

// storeError answers a failure of the campaign store or the state machine.
func (a *server) storeError(w http.ResponseWriter, err error) {
	var (
		fe   *events.FieldError
		se   *campaign.SelectionError
		full *bus.FullError
	)
	switch {
	case errors.As(err, &se):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "invalid_products", Field: se.Field, Detail: se.Error()})
	case errors.As(err, &fe):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: fe.Field, Detail: fe.Reason})
	case errors.Is(err, campaign.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Detail: "Job not found"})
	case errors.Is(err, campaign.ErrExists):
		writeJSON(w, http.StatusConflict, apiError{Error: "conflict", Field: "campaign_id", Detail: "a job with this campaign_id exists"})
	case errors.Is(err, campaign.ErrInvalidState):
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: err.Error()})
	case errors.Is(err, campaign.ErrTooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "too_large", Field: "brief",
			Detail: "the request cannot travel as one event; shorten the brief: " + err.Error()})
	case errors.Is(err, campaign.ErrSelection):
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "invalid_products", Detail: err.Error()})
	case errors.Is(err, errNotPublished):
		a.log.Warn().Err(err).Msg("bookings API: line change not published")
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: err.Error()})
	case errors.As(err, &full):
		// Backpressure: the event stream or a store is nearly full.
		a.log.Warn().Err(err).Msg("bookings API: no room for a new campaign; refused with Retry-After")
		retryAfter(w, full.RetryAfter)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "full", Detail: "no room for a new campaign now, nothing was recorded: " +
			full.Error() + "; submit it again after Retry-After seconds"})
	default:
		a.log.Warn().Err(err).Msg("bookings API: campaign store unavailable")
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the campaign store cannot be reached: " + err.Error()})
	}
}

// retryAfter sets Retry-After to d, in whole seconds (at least 1).
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((d+time.Second-1)/time.Second))))
}

func (a *server) create(w http.ResponseWriter, r *http.Request) {
	var req BookingRequest
	if e := decodeBody(w, r, &req); e != nil {
		e.write(w)
		return
	}
	if req.CampaignID == "" {
		req.CampaignID = campaign.NewID()
	}
	now := a.now()
	cr, err := req.ToCampaign(now)
	if err != nil {
		a.storeError(w, err)
		return
	}
	if req.Notify != nil {
		wh, err := req.Notify.Webhook(a.opts.Guard, now)
		if err != nil {
			a.storeError(w, err)
			return
		}
		if !a.saveWebhook(w, r, cr.CampaignID, wh) {
			return
		}
		cr.Notify = &events.Notify{URL: wh.URL}
	}
	sctx, sp, log := a.span(r, "POST /bookings", "")
	defer sp.End()
	log = log.With().Str("campaign_id", cr.CampaignID).Logger()
	ctx, cancel := context.WithTimeout(sctx, storeTimeout)
	defer cancel()
	c, err := a.campaigns.Submit(ctx, a.pub, cr, now)
	switch {
	case errors.Is(err, campaign.ErrNotPublished):
		log.Warn().Err(err).Msg("campaign recorded; publication failed, the booker's sweeper re-publishes it")
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "campaign " + cr.CampaignID +
			" is recorded but could not be published yet; it is published automatically once the broker answers (do not submit it again): " + err.Error()})
		return
	case err != nil:
		a.storeError(w, err)
		return
	}
	log.Info().Str("name", cr.Brief.Name).Str("budget", cr.Brief.BudgetMicros.String()).
		Bool("auto_approve", cr.AutoApprove).Msg("campaign accepted")
	writeJSON(w, http.StatusOK, map[string]string{"job_id": c.ID, "status": string(c.Status),
		"message": "Booking workflow started. Use GET /bookings/" + c.ID + " to check status."})
}

// saveWebhook stores the campaign's webhook before the campaign is
// published, so the notifier finds it for the first status change. A used
// campaign id is refused first (409, as Submit would), so a duplicate
// request cannot replace another campaign's secret.
func (a *server) saveWebhook(w http.ResponseWriter, r *http.Request, id string, wh notifier.Webhook) bool {
	if a.opts.Webhooks == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Field: "notify", Detail: "webhooks are not available in this process"})
		return false
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	if _, err := a.campaigns.Get(ctx, id); err == nil {
		a.storeError(w, campaign.ErrExists)
		return false
	} else if !errors.Is(err, campaign.ErrNotFound) {
		a.storeError(w, err)
		return false
	}
	// Created, never overwritten: of two racing requests for one id only
	// the first stores its secret, the other gets 409.
	if _, err := a.opts.Webhooks.Update(ctx, id, func(v *notifier.Webhook, exists bool) (bool, error) {
		if exists {
			return false, campaign.ErrExists
		}
		*v = wh
		return true, nil
	}); err != nil {
		a.storeError(w, err)
		return false
	}
	return true
}

func validID(w http.ResponseWriter, id string) bool {
	if events.ValidateCampaignID(id) != nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Detail: "Job not found"})
		return false
	}
	return true
}

func (a *server) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	c, err := a.campaigns.Get(ctx, id)
	if err == nil {
		err = a.campaigns.LoadQuotes(ctx, c)
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	j := JobOf(c)
	if a.opts.Ledger != nil {
		led, found, err := a.opts.Ledger.Get(ctx, id)
		if err != nil {
			a.storeError(w, err)
			return
		}
		if found {
			j.Lines, j.CommittedMicros = linesOf(led)
		}
	}
	writeJSON(w, http.StatusOK, j)
}

// JobRow is one campaign in GET /bookings.
type JobRow struct {
	JobID            string                `json:"job_id"`
	Status           events.CampaignStatus `json:"status"`
	CampaignName     string                `json:"campaign_name"`
	Budget           float64               `json:"budget"`
	BudgetMicros     events.Micros         `json:"budget_micros"`
	TotalSpend       float64               `json:"total_spend"`
	TotalSpendMicros events.Micros         `json:"total_spend_micros"`
	Deals            int                   `json:"deals"`
	CreatedAt        time.Time             `json:"created_at"`
}

func (a *server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	intParam := func(name string, def, lo, hi int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: name, Detail: fmt.Sprintf("must be an integer from %d to %d", lo, hi)})
			return 0, false
		}
		return n, true
	}
	limit, ok := intParam("limit", 20, 1, 1000)
	if !ok {
		return
	}
	offset, ok := intParam("offset", 0, 0, 1<<30)
	if !ok {
		return
	}
	status := events.CampaignStatus(q.Get("status"))
	if status != "" && !status.Valid() {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "status", Detail: "must be one of " + strings.Join(events.CampaignStatus("").EnumValues(), ", ")})
		return
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	page, err := a.campaigns.List(ctx, campaign.ListQuery{Status: status, Offset: offset, Limit: limit})
	if err != nil {
		a.storeError(w, err)
		return
	}
	counts := make(map[string]int, len(page.Counts))
	for st, n := range page.Counts {
		counts[string(st)] = n
	}
	rows := make([]JobRow, 0, len(page.Summaries))
	for _, c := range page.Summaries {
		rows = append(rows, JobRow{JobID: c.ID, Status: c.Status, CampaignName: c.Name, Budget: c.BudgetMicros.Dollars(), BudgetMicros: c.BudgetMicros,
			TotalSpend: c.TotalSpendMicros.Dollars(), TotalSpendMicros: c.TotalSpendMicros, Deals: c.Deals, CreatedAt: c.CreatedAt})
	}
	writeJSON(w, http.StatusOK, jobList{Counts: counts, Jobs: rows, Limit: limit, Offset: offset, Total: page.Total})
}

// jobList is the GET /bookings answer.
type jobList struct {
	Counts map[string]int `json:"counts"`
	Jobs   []JobRow       `json:"jobs"`
	Limit  int            `json:"limit"`
	Offset int            `json:"offset"`
	Total  int            `json:"total"`
}

func (a *server) approveAll(w http.ResponseWriter, r *http.Request) {
	a.doApprove(w, r, nil)
}

func (a *server) approve(w http.ResponseWriter, r *http.Request) {
	var req ApproveRequest
	if e := decodeBody(w, r, &req); e != nil {
		e.write(w)
		return
	}
	a.doApprove(w, r, &campaign.Selection{QuoteIDs: req.QuoteIDs, PackageIDs: req.PackageIDs, ProductIDs: req.ProductIDs})
}

// doApprove moves the campaign awaiting_approval → booking through the
// state machine (revision-checked: of concurrent callers exactly one wins,
// the others get 409) and publishes the PortfolioApproved it returns. If
// that publication fails the approval stays recorded and the booker's
// sweeper publishes it; nothing is rolled back.
func (a *server) doApprove(w http.ResponseWriter, r *http.Request, sel *campaign.Selection) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	now := a.now()
	ctx, cancel := storeContext(r)
	defer cancel()
	c, evs, err := a.campaigns.Transition(ctx, id, func(c *campaign.Campaign, exists bool) ([]events.Event, error) {
		if !exists {
			return nil, campaign.ErrNotFound
		}
		if c.Status != events.StatusAwaitingApproval || c.Plan == nil {
			return nil, &campaign.StateError{Op: "approve", Status: c.Status}
		}
		lines := c.Plan.Lines
		if sel != nil {
			var err error
			if lines, err = campaign.Select(c.Plan, *sel); err != nil {
				return nil, err
			}
		}
		return c.Approve(lines, "api", now)
	})
	if err != nil {
		a.storeError(w, err)
		return
	}
	// The approval, and the booking after it, continue the campaign's
	// trace.
	sctx, sp, log := a.span(r, "POST /bookings/{id}/approve", c.Traceparent)
	defer sp.End()
	log = log.With().Str("campaign_id", id).Logger()
	msg := "Approved; booking. Use GET /bookings/" + id + " to follow it."
	pctx, pcancel := context.WithTimeout(sctx, storeTimeout)
	defer pcancel()
	if perr := a.publish(pctx, evs); perr != nil {
		log.Warn().Err(perr).Msg("approval recorded; publication failed, the booker's sweeper re-publishes it")
		msg = "Approved; booking starts once the approval reaches the pipeline (re-published automatically)."
	}
	lines := c.Approved.Lines
	var total events.Micros
	for _, l := range lines {
		total += l.SpendMicros
	}
	log.Info().Str("by", "api").Int("lines", len(lines)).Str("spend", total.String()).Msg("portfolio approved")
	writeJSON(w, http.StatusOK, map[string]any{"status": c.Status, "approved_count": len(lines), "total_cost": total.Dollars(),
		"total_cost_micros": total, "message": msg})
}

func (a *server) publish(ctx context.Context, evs []events.Event) error {
	for _, e := range evs {
		if err := a.pub.Publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// reject ends a campaign awaiting approval without booking anything: the
// state machine moves it to rejected and returns CampaignRejected and
// CampaignCompleted, so downstream systems see the decision.
func (a *server) reject(w http.ResponseWriter, r *http.Request) {
	var req RejectRequest
	if r.ContentLength != 0 {
		if e := decodeBody(w, r, &req); e != nil {
			e.write(w)
			return
		}
	}
	if len(req.Reason) > 500 {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "reason", Detail: "must be at most 500 characters"})
		return
	}
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	reason := "portfolio rejected by the buyer"
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	c, evs, err := a.campaigns.Transition(ctx, id, func(c *campaign.Campaign, exists bool) ([]events.Event, error) {
		if !exists {
			return nil, campaign.ErrNotFound
		}
		return c.RejectPortfolio(reason, a.now())
	})
	if err != nil {
		a.storeError(w, err)
		return
	}
	sctx, sp, log := a.span(r, "POST /bookings/{id}/reject", c.Traceparent)
	defer sp.End()
	log.Info().Str("campaign_id", id).Str("by", "api").Str("reason", reason).Msg("portfolio rejected")
	pctx, pcancel := context.WithTimeout(sctx, storeTimeout)
	defer pcancel()
	if err := a.publish(pctx, evs); err != nil {
		// The campaign is rejected; the events are the audit trail, so say they are missing.
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "job rejected but the event was not published: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": string(events.StatusRejected), "message": reason})
}
