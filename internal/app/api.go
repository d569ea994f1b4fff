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
type BookingRequest struct {
	CampaignID          string                   `json:"campaign_id,omitempty"`
	Brief               events.Brief             `json:"brief"`
	AutoApprove         bool                     `json:"auto_approve"`
	Buyer               identity.BuyerIdentity   `json:"buyer"`
	Negotiation         events.NegotiationPolicy `json:"negotiation"`
	AllowUnknownSellers bool                     `json:"allow_unknown_sellers"`
	Sellers             []string                 `json:"sellers"`
	ShoppingWindowSec   int                      `json:"shopping_window_seconds"`
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
	cr := events.CampaignRequested{CampaignID: req.CampaignID, Brief: req.Brief, Buyer: req.Buyer, AutoApprove: req.AutoApprove,
		AllowUnknownSellers: req.AllowUnknownSellers, Negotiation: req.Negotiation, Sellers: req.Sellers,
		ShoppingWindowSec: req.ShoppingWindowSec, RequestedAt: time.Now().UTC()}
	if err := cr.Validate(); err != nil {
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
	JobID           string                 `json:"job_id"`
	Status          string                 `json:"status"`
	Progress        float64                `json:"progress"`
	CampaignName    string                 `json:"campaign_name"`
	Budget          float64                `json:"budget"`
	AutoApprove     bool                   `json:"auto_approve"`
	SellersExpected int                    `json:"sellers_expected"`
	SellersResolved int                    `json:"sellers_resolved"`
	SkippedSellers  []events.SellerSkipped `json:"skipped_sellers"`
	Sources         []events.SourceStatus  `json:"sources,omitempty"`
	Quotes          []events.QuoteReady    `json:"quotes"`
	LateQuotes      []events.QuoteReady    `json:"late_quotes,omitempty"`
	LateQuoteCount  int                    `json:"late_quote_count,omitempty"`
	Recommendations []events.PlanLine      `json:"recommendations"`
	Excluded        []events.PlanExclusion `json:"excluded,omitempty"`
	PlanNotes       []string               `json:"plan_notes,omitempty"`
	PlanRevision    int                    `json:"plan_revision,omitempty"`
	ProposedSpend   float64                `json:"proposed_spend"`
	BookedLines     []events.DealBooked    `json:"booked_lines"`
	Failed          []events.BookingFailed `json:"failed"`
	TotalSpend      float64                `json:"total_spend"`
	Errors          []string               `json:"errors"`
	Deadline        *time.Time             `json:"deadline,omitempty"`
	CreatedAt       time.Time              `json:"created_at"`
	UpdatedAt       time.Time              `json:"updated_at"`
}

// JobOf renders a campaign projection as a job.
func JobOf(c *booker.Campaign) Job {
	j := Job{JobID: c.ID, Status: c.Status, Progress: c.Progress, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		SkippedSellers: nonNil(c.Skipped), Sources: c.Sources, Quotes: nonNil(c.SortedQuotes()), LateQuotes: c.LateQuotes, LateQuoteCount: c.LateCount, Recommendations: []events.PlanLine{},
		BookedLines: nonNil(c.Deals), Failed: nonNil(c.Failures), Errors: nonNil(c.Errors)}
	if c.Request != nil {
		j.CampaignName, j.Budget, j.AutoApprove = c.Request.Brief.Name, c.Request.Brief.Budget, c.Request.AutoApprove
	}
	j.SellersResolved, j.SellersExpected = c.Resolved()
	if c.Plan != nil {
		j.Recommendations, j.Excluded, j.PlanNotes = nonNil(c.Plan.Lines), c.Plan.Excluded, c.Plan.Notes
		j.PlanRevision, j.ProposedSpend = c.Plan.Revision, c.Plan.TotalSpend
	}
	if !c.Deadline.IsZero() {
		d := c.Deadline
		j.Deadline = &d
	}
	j.TotalSpend = booker.Summary(c).TotalSpend
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
		JobID        string    `json:"job_id"`
		Status       string    `json:"status"`
		CampaignName string    `json:"campaign_name"`
		Budget       float64   `json:"budget"`
		CreatedAt    time.Time `json:"created_at"`
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
				rw.CampaignName, rw.Budget = c.Request.Brief.Name, c.Request.Brief.Budget
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
	total := 0.0
	for _, l := range lines {
		total += l.Spend
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": booker.StatusBooking, "approved_count": len(lines), "total_cost": total,
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
