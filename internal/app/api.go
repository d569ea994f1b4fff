package app

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/services/booker"
)

// BookingRequest is the body of POST /bookings: the reference buyer's shape
// ({"brief":{...},"auto_approve":false}) extended with the pipeline's options.
// Its amounts are dollars, as the reference's users send them; they are
// converted to the contract's micros once, here at the edge (ToCampaign).
type BookingRequest struct {
	CampaignID          string                 `json:"campaign_id,omitempty"`
	Brief               BriefInput             `json:"brief"`
	AutoApprove         bool                   `json:"auto_approve"`
	Buyer               identity.BuyerIdentity `json:"buyer"`
	Negotiation         NegotiationInput       `json:"negotiation"`
	AllowUnknownSellers bool                   `json:"allow_unknown_sellers"`
	Sellers             []string               `json:"sellers"`
	ShoppingWindowSec   int                    `json:"shopping_window_seconds"`
}

// BriefInput mirrors events.Brief with the reference's dollar fields:
// budget, per_seller_cap, kpis.target_cpm, kpis.max_cpm and
// weights.price_ceiling are USD (CPMs per thousand impressions).
type BriefInput struct {
	Name           string             `json:"name"`
	Objectives     []string           `json:"objectives,omitempty"`
	Budget         float64            `json:"budget"`
	Currency       string             `json:"currency,omitempty"`
	StartDate      string             `json:"start_date"`
	EndDate        string             `json:"end_date"`
	TargetAudience map[string]any     `json:"target_audience,omitempty"`
	KPIs           KPIsInput          `json:"kpis,omitempty"`
	Channels       []string           `json:"channels,omitempty"`
	AdFormats      []string           `json:"ad_formats,omitempty"`
	DeviceTypes    []int              `json:"device_types,omitempty"`
	Geo            []string           `json:"geo,omitempty"`
	Keywords       []string           `json:"keywords,omitempty"`
	Tags           []string           `json:"tags,omitempty"`
	Impressions    int64              `json:"impressions,omitempty"`
	DealType       string             `json:"deal_type,omitempty"`
	PerSellerCap   float64            `json:"per_seller_cap,omitempty"`
	FormatMix      map[string]float64 `json:"format_mix,omitempty"`
	MinSellers     int                `json:"min_sellers,omitempty"`
	Weights        *WeightsInput      `json:"weights,omitempty"`
}

// KPIsInput is the brief's CPM targets in dollars.
type KPIsInput struct {
	TargetCPM float64 `json:"target_cpm,omitempty"`
	MaxCPM    float64 `json:"max_cpm,omitempty"`
}

// WeightsInput is events.ValueWeights with the price ceiling in dollars.
type WeightsInput struct {
	Price        float64 `json:"price"`
	Video        float64 `json:"video"`
	Display      float64 `json:"display"`
	Negotiable   float64 `json:"negotiable"`
	Volume       float64 `json:"volume"`
	PriceCeiling float64 `json:"price_ceiling"`
}

// NegotiationInput is events.NegotiationPolicy with the step in dollars.
type NegotiationInput struct {
	Strategy  string  `json:"strategy,omitempty"`
	Step      float64 `json:"step,omitempty"`
	MaxRounds int     `json:"max_rounds,omitempty"`
}

// BriefInputOf renders a contract brief in the API's dollar shape (for
// clients and tests that hold an events.Brief).
func BriefInputOf(b events.Brief) BriefInput {
	in := BriefInput{Name: b.Name, Objectives: b.Objectives, Budget: b.BudgetMicros.Dollars(), Currency: b.Currency, StartDate: b.StartDate,
		EndDate: b.EndDate, TargetAudience: b.TargetAudience, KPIs: KPIsInput{TargetCPM: b.KPIs.TargetCPMMicros.Dollars(), MaxCPM: b.KPIs.MaxCPMMicros.Dollars()},
		Channels: b.Channels, AdFormats: b.AdFormats, DeviceTypes: b.DeviceTypes, Geo: b.Geo, Keywords: b.Keywords, Tags: b.Tags,
		Impressions: b.Impressions, DealType: b.DealType, PerSellerCap: b.PerSellerCapMicros.Dollars(), FormatMix: b.FormatMix, MinSellers: b.MinSellers}
	if w := b.Weights; w != nil {
		in.Weights = &WeightsInput{Price: w.Price, Video: w.Video, Display: w.Display, Negotiable: w.Negotiable, Volume: w.Volume,
			PriceCeiling: w.PriceCeilingMicros.Dollars()}
	}
	return in
}

// apiFields maps the contract's micros field names back to the request's
// dollar names, so a 422 names the field the client sent.
var apiFields = map[string]string{
	"brief.budget_micros":                "brief.budget",
	"brief.per_seller_cap_micros":        "brief.per_seller_cap",
	"brief.kpis.target_cpm_micros":       "brief.kpis.target_cpm",
	"brief.kpis.max_cpm_micros":          "brief.kpis.max_cpm",
	"brief.weights.price_ceiling_micros": "brief.weights.price_ceiling",
	"negotiation.step_micros":            "negotiation.step",
}

// ToCampaign converts the request to the contract, each dollar amount once
// with events.MicrosFromDollars (round half to even to the micro). An amount
// that has no micros value is a *events.FieldError naming the request field.
func (req BookingRequest) ToCampaign(now time.Time) (events.CampaignRequested, error) {
	var err error
	conv := func(field string, d float64) events.Micros {
		m, e := events.MicrosFromDollars(d)
		if e != nil && err == nil {
			err = &events.FieldError{Field: field, Reason: "must be a finite amount of dollars: " + e.Error()}
		}
		return m
	}
	b := req.Brief
	brief := events.Brief{Name: b.Name, Objectives: b.Objectives, BudgetMicros: conv("brief.budget", b.Budget), Currency: b.Currency,
		StartDate: b.StartDate, EndDate: b.EndDate, TargetAudience: b.TargetAudience,
		KPIs:     events.KPIs{TargetCPMMicros: conv("brief.kpis.target_cpm", b.KPIs.TargetCPM), MaxCPMMicros: conv("brief.kpis.max_cpm", b.KPIs.MaxCPM)},
		Channels: b.Channels, AdFormats: b.AdFormats, DeviceTypes: b.DeviceTypes, Geo: b.Geo, Keywords: b.Keywords, Tags: b.Tags,
		Impressions: b.Impressions, DealType: b.DealType, PerSellerCapMicros: conv("brief.per_seller_cap", b.PerSellerCap),
		FormatMix: b.FormatMix, MinSellers: b.MinSellers}
	if w := b.Weights; w != nil {
		brief.Weights = &events.ValueWeights{Price: w.Price, Video: w.Video, Display: w.Display, Negotiable: w.Negotiable, Volume: w.Volume,
			PriceCeilingMicros: conv("brief.weights.price_ceiling", w.PriceCeiling)}
	}
	cr := events.CampaignRequested{CampaignID: req.CampaignID, Brief: brief, Buyer: req.Buyer, AutoApprove: req.AutoApprove,
		AllowUnknownSellers: req.AllowUnknownSellers, Sellers: req.Sellers, ShoppingWindowSec: req.ShoppingWindowSec, RequestedAt: now,
		Negotiation: events.NegotiationPolicy{Strategy: req.Negotiation.Strategy, StepMicros: conv("negotiation.step", req.Negotiation.Step),
			MaxRounds: req.Negotiation.MaxRounds}}
	if err != nil {
		return cr, err
	}
	if err := cr.Validate(); err != nil {
		if fe, ok := events.AsFieldError(err); ok {
			if f, ok := apiFields[fe.Field]; ok {
				return cr, &events.FieldError{Field: f, Reason: strings.ReplaceAll(fe.Reason, "_micros", "")}
			}
			return cr, &events.FieldError{Field: fe.Field, Reason: strings.ReplaceAll(fe.Reason, "_micros", "")}
		}
		return cr, err
	}
	return cr, nil
}

// ApproveRequest is the body of POST /bookings/{id}/approve. Lines are named
// by quote id, package id or product id (the reference's field).
type ApproveRequest struct {
	QuoteIDs   []string `json:"approved_quote_ids"`
	PackageIDs []string `json:"approved_package_ids"`
	ProductIDs []string `json:"approved_product_ids"`
}

// apiError is every error body: a stable code, the field when one is at
// fault, and a human detail.
type apiError struct {
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

type api struct {
	bus    *bus.Bus
	booker *booker.Service
	key    string
	log    zerolog.Logger
}

// NewAPI returns the bookings API handler.
func NewAPI(b *bus.Bus, bk *booker.Service, apiKey string, log zerolog.Logger) http.Handler {
	a := &api{bus: b, booker: bk, key: apiKey, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	})
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	// readyz reports whether the process can do its work: connected to NATS
	// (liveness deliberately does not check it, to avoid restart storms
	// during a broker blip).
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if st := b.NC.Status(); st != nats.CONNECTED {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "not_ready", Detail: "NATS connection is " + st.String()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("POST /bookings", a.create)
	mux.HandleFunc("GET /bookings", a.list)
	mux.HandleFunc("GET /bookings/{id}", a.get)
	mux.HandleFunc("POST /bookings/{id}/approve", a.approve)
	mux.HandleFunc("POST /bookings/{id}/approve-all", a.approveAll)
	mux.HandleFunc("POST /bookings/{id}/reject", a.reject)
	return a.auth(mux)
}

func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.key != "" && r.URL.Path != "/health" && r.URL.Path != "/livez" && r.URL.Path != "/readyz" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("X-API-Key")), []byte(a.key)) != 1 {
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthorized", Detail: "Invalid or missing API key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON body strictly: unknown fields and trailing data
// are errors that name what is wrong.
func decodeBody(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return &apiError{Error: "bad_request", Detail: "cannot read body: " + err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &apiError{Error: "validation", Field: te.Field, Detail: fmt.Sprintf("must be a %s", te.Type)}
		}
		return &apiError{Error: "bad_request", Detail: "invalid JSON: " + err.Error()}
	}
	return nil
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	var req BookingRequest
	if e := decodeBody(r, &req); e != nil {
		status := http.StatusBadRequest
		if e.Error == "validation" {
			status = http.StatusUnprocessableEntity
		}
		writeJSON(w, status, e)
		return
	}
	if req.CampaignID == "" {
		req.CampaignID = "cmp-" + events.NewID()[:20]
	}
	cr, err := req.ToCampaign(time.Now().UTC())
	if err != nil {
		fe, _ := events.AsFieldError(err)
		e := apiError{Error: "validation", Detail: err.Error()}
		if fe != nil {
			e.Field, e.Detail = fe.Field, fe.Reason
		}
		writeJSON(w, http.StatusUnprocessableEntity, e)
		return
	}
	ctx := r.Context()
	now := time.Now().UTC()
	created := false
	if _, err := bus.Update(ctx, a.booker.Campaigns, cr.CampaignID, func(c *booker.Campaign, exists bool) (bool, error) {
		if exists {
			return false, nil
		}
		*c = booker.Campaign{ID: cr.CampaignID, Status: booker.StatusPending, CreatedAt: now, UpdatedAt: now, Request: &cr}
		created = true
		return true, nil
	}); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: err.Error()})
		return
	}
	if !created {
		writeJSON(w, http.StatusConflict, apiError{Error: "conflict", Field: "campaign_id", Detail: "a job with this campaign_id exists"})
		return
	}
	e, err := events.New(events.KindCampaignRequested, events.ChildID(cr.CampaignID, "api", "requested"), "api", cr.CampaignID, cr)
	if err == nil {
		err = a.bus.Publish(ctx, e)
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "campaign not published: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"job_id": cr.CampaignID, "status": booker.StatusPending,
		"message": "Booking workflow started. Use GET /bookings/" + cr.CampaignID + " to check status."})
}

// Job is the bookings API's view of a campaign.
type Job struct {
	JobID               string                 `json:"job_id"`
	Status              string                 `json:"status"`
	Progress            float64                `json:"progress"`
	CampaignName        string                 `json:"campaign_name"`
	Budget              float64                `json:"budget" desc:"USD, from budget_micros"`
	BudgetMicros        events.Micros          `json:"budget_micros"`
	AutoApprove         bool                   `json:"auto_approve"`
	SellersExpected     int                    `json:"sellers_expected"`
	SellersResolved     int                    `json:"sellers_resolved"`
	SkippedSellers      []events.SellerSkipped `json:"skipped_sellers"`
	Sources             []events.SourceStatus  `json:"sources,omitempty"`
	Quotes              []events.QuoteReady    `json:"quotes"`
	LateQuotes          []events.QuoteReady    `json:"late_quotes,omitempty"`
	LateQuoteCount      int                    `json:"late_quote_count,omitempty"`
	Recommendations     []events.PlanLine      `json:"recommendations"`
	Excluded            []events.PlanExclusion `json:"excluded,omitempty"`
	PlanNotes           []string               `json:"plan_notes,omitempty"`
	PlanRevision        int                    `json:"plan_revision,omitempty"`
	ProposedSpend       float64                `json:"proposed_spend"`
	ProposedSpendMicros events.Micros          `json:"proposed_spend_micros"`
	BookedLines         []BookedLine           `json:"booked_lines"`
	Failed              []events.BookingFailed `json:"failed"`
	TotalSpend          float64                `json:"total_spend"`
	TotalSpendMicros    events.Micros          `json:"total_spend_micros"`
	Errors              []string               `json:"errors"`
	Deadline            *time.Time             `json:"deadline,omitempty"`
	CreatedAt           time.Time              `json:"created_at"`
	UpdatedAt           time.Time              `json:"updated_at"`
}

// BookedLine is a booked deal in the job: the DealBooked event (micros)
// plus the reference's booked_lines dollar fields cpm and cost, derived from
// cpm_micros and spend_micros.
type BookedLine struct {
	events.DealBooked
	CPM  float64 `json:"cpm"`
	Cost float64 `json:"cost"`
}

// JobOf renders a campaign projection as a job.
func JobOf(c *booker.Campaign) Job {
	j := Job{JobID: c.ID, Status: c.Status, Progress: c.Progress, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		SkippedSellers: nonNil(c.Skipped), Sources: c.Sources, Quotes: nonNil(c.SortedQuotes()), LateQuotes: c.LateQuotes, LateQuoteCount: c.LateCount, Recommendations: []events.PlanLine{},
		BookedLines: []BookedLine{}, Failed: nonNil(c.Failures), Errors: nonNil(c.Errors)}
	if c.Request != nil {
		j.CampaignName, j.BudgetMicros, j.AutoApprove = c.Request.Brief.Name, c.Request.Brief.BudgetMicros, c.Request.AutoApprove
		j.Budget = j.BudgetMicros.Dollars()
	}
	j.SellersResolved, j.SellersExpected = c.Resolved()
	if c.Plan != nil {
		j.Recommendations, j.Excluded, j.PlanNotes = nonNil(c.Plan.Lines), c.Plan.Excluded, c.Plan.Notes
		j.PlanRevision, j.ProposedSpendMicros = c.Plan.Revision, c.Plan.TotalSpendMicros
		j.ProposedSpend = j.ProposedSpendMicros.Dollars()
	}
	if !c.Deadline.IsZero() {
		d := c.Deadline
		j.Deadline = &d
	}
	for _, d := range c.Deals {
		j.BookedLines = append(j.BookedLines, BookedLine{DealBooked: d, CPM: d.CPMMicros.Dollars(), Cost: d.SpendMicros.Dollars()})
	}
	j.TotalSpendMicros = booker.Summary(c).TotalSpendMicros
	j.TotalSpend = j.TotalSpendMicros.Dollars()
	return j
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *api) load(ctx context.Context, w http.ResponseWriter, id string) (*booker.Campaign, bool) {
	if events.ValidateCampaignID(id) != nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Detail: "Job not found"})
		return nil, false
	}
	var c booker.Campaign
	_, found, err := bus.GetJSON(ctx, a.booker.Campaigns, id, &c)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: err.Error()})
		return nil, false
	}
	if !found {
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Detail: "Job not found"})
		return nil, false
	}
	return &c, true
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	c, ok := a.load(r.Context(), w, r.PathValue("id"))
	if !ok {
		return
	}
	if err := booker.LoadQuotes(r.Context(), a.booker.Quotes, c); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, JobOf(c))
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "limit", Detail: "must be an integer from 1 to 1000"})
			return
		}
		limit = n
	}
	status := r.URL.Query().Get("status")
	type row struct {
		JobID        string        `json:"job_id"`
		Status       string        `json:"status"`
		CampaignName string        `json:"campaign_name"`
		Budget       float64       `json:"budget"`
		BudgetMicros events.Micros `json:"budget_micros"`
		CreatedAt    time.Time     `json:"created_at"`
	}
	rows := []row{}
	keys, err := a.booker.Campaigns.ListKeys(r.Context())
	if err == nil {
		for k := range keys.Keys() {
			var c booker.Campaign
			if _, found, err := bus.GetJSON(r.Context(), a.booker.Campaigns, k, &c); err != nil || !found {
				continue
			}
			if status != "" && c.Status != status {
				continue
			}
			rw := row{JobID: c.ID, Status: c.Status, CreatedAt: c.CreatedAt}
			if c.Request != nil {
				rw.CampaignName, rw.BudgetMicros = c.Request.Brief.Name, c.Request.Brief.BudgetMicros
				rw.Budget = rw.BudgetMicros.Dollars()
			}
			rows = append(rows, rw)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].CreatedAt.After(rows[j].CreatedAt) })
	total := len(rows)
	if len(rows) > limit {
		rows = rows[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": rows, "total": total})
}

func (a *api) approveAll(w http.ResponseWriter, r *http.Request) {
	a.doApprove(w, r, nil)
}

func (a *api) approve(w http.ResponseWriter, r *http.Request) {
	var req ApproveRequest
	if e := decodeBody(r, &req); e != nil {
		writeJSON(w, http.StatusBadRequest, e)
		return
	}
	a.doApprove(w, r, &req)
}

// doApprove claims the job (awaiting_approval → booking, revision-checked so
// two approvals cannot both win), then publishes PortfolioApproved; if the
// publication fails the claim is released.
func (a *api) doApprove(w http.ResponseWriter, r *http.Request, sel *ApproveRequest) {
	ctx := r.Context()
	c, ok := a.load(ctx, w, r.PathValue("id"))
	if !ok {
		return
	}
	if c.Status != booker.StatusAwaitingApproval || c.Plan == nil {
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: "Job is not awaiting approval. Current status: " + c.Status})
		return
	}
	lines := c.Plan.Lines
	if sel != nil {
		want := map[string]bool{}
		for _, l := range [][]string{sel.QuoteIDs, sel.PackageIDs, sel.ProductIDs} {
			for _, id := range l {
				want[id] = true
			}
		}
		if len(want) == 0 {
			writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "approved_quote_ids", Detail: "name at least one line (quote, package or product id); use approve-all to approve everything"})
			return
		}
		matched := map[string]bool{}
		lines = nil
		for _, l := range c.Plan.Lines {
			hit := false
			for _, id := range []string{l.QuoteID, l.PackageID, l.ProductID} {
				if id != "" && want[id] {
					matched[id], hit = true, true
				}
			}
			if hit {
				lines = append(lines, l)
			}
		}
		for id := range want {
			if !matched[id] {
				writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "invalid_products", Field: "approved_quote_ids", Detail: "not in the proposed portfolio: " + id})
				return
			}
		}
	}
	appr := events.PortfolioApproved{CampaignID: c.ID, ApprovedBy: "api", Revision: c.Plan.Revision, Lines: lines}
	claimed := false
	if _, err := bus.Update(ctx, a.booker.Campaigns, c.ID, func(cc *booker.Campaign, _ bool) (bool, error) {
		if cc.Status != booker.StatusAwaitingApproval || cc.Plan == nil || cc.Plan.Revision != appr.Revision {
			return false, nil
		}
		cc.Status, cc.Approved, cc.UpdatedAt = booker.StatusBooking, &appr, time.Now().UTC()
		cc.Progress = 0.95
		claimed = true
		return true, nil
	}); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: err.Error()})
		return
	}
	if !claimed {
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: "Job is no longer awaiting approval"})
		return
	}
	e, err := events.New(events.KindPortfolioApproved, events.ChildID(c.ID, "api", fmt.Sprintf("approved-%d", appr.Revision)), "api", c.ID, appr)
	if err == nil {
		err = a.bus.Publish(ctx, e)
	}
	if err != nil {
		_, _ = bus.Update(context.WithoutCancel(ctx), a.booker.Campaigns, c.ID, func(cc *booker.Campaign, _ bool) (bool, error) {
			cc.Status, cc.Approved = booker.StatusAwaitingApproval, nil
			return true, nil
		})
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "approval not published: " + err.Error()})
		return
	}
	var total events.Micros
	for _, l := range lines {
		total += l.SpendMicros
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": booker.StatusBooking, "approved_count": len(lines),
		"total_cost": total.Dollars(), "total_cost_micros": total,
		"message": "Approved; booking. Use GET /bookings/" + c.ID + " to follow it."})
}

// RejectRequest is the optional body of POST /bookings/{id}/reject.
type RejectRequest struct {
	Reason string `json:"reason"`
}

// reject ends a job awaiting approval without booking anything and
// publishes CampaignRejected, so downstream systems see the decision.
func (a *api) reject(w http.ResponseWriter, r *http.Request) {
	var req RejectRequest
	if r.ContentLength != 0 {
		if e := decodeBody(r, &req); e != nil {
			writeJSON(w, http.StatusBadRequest, e)
			return
		}
	}
	ctx := r.Context()
	c, ok := a.load(ctx, w, r.PathValue("id"))
	if !ok {
		return
	}
	reason := "portfolio rejected by the buyer"
	if req.Reason != "" {
		reason += ": " + req.Reason
	}
	claimed := false
	if _, err := bus.Update(ctx, a.booker.Campaigns, c.ID, func(cc *booker.Campaign, _ bool) (bool, error) {
		if cc.Status != booker.StatusAwaitingApproval {
			return false, nil
		}
		cc.Status, cc.Progress, cc.UpdatedAt = booker.StatusFailed, 1, time.Now().UTC()
		cc.Errors = append(cc.Errors, reason)
		claimed = true
		return true, nil
	}); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: err.Error()})
		return
	}
	if !claimed {
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: "Job is not awaiting approval. Current status: " + c.Status})
		return
	}
	e, err := events.New(events.KindCampaignRejected, events.ChildID(c.ID, "api", "rejected"), "api", c.ID, events.CampaignRejected{CampaignID: c.ID, Reason: reason})
	if err == nil {
		err = a.bus.Publish(ctx, e)
	}
	if err != nil {
		// The job is already failed; the event is the audit trail, so say it is missing.
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "job rejected but the event was not published: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": booker.StatusFailed, "message": reason})
}
