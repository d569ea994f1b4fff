package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/reallocator"
)

// ReallocationList is GET /bookings/{id}/reallocations: every reallocation
// revision of the campaign, oldest first, with where it stands.
type ReallocationList struct {
	CampaignID    string         `json:"campaign_id"`
	BudgetMicros  events.Micros  `json:"budget_micros"`
	Reallocations []Reallocation `json:"reallocations"`
}

// Reallocation is one revision in GET /bookings/{id}/reallocations.
type Reallocation struct {
	Revision int `json:"revision"`
	// Status is proposed (waiting for a decision), rejected, applying,
	// applied or failed.
	Status    string                      `json:"status"`
	Proposal  events.ReallocationProposed `json:"proposal"`
	DecidedBy string                      `json:"decided_by,omitempty"`
	DecidedAt *time.Time                  `json:"decided_at,omitempty"`
	Reason    string                      `json:"reason,omitempty"`
	// Changes are the line changes applying it, with their outcome
	// (phase 1: decreases and pauses; phase 2: increases).
	Changes []ReallocationChange             `json:"changes"`
	Moves   []events.ReallocationMoveOutcome `json:"moves,omitempty"`
	EndedAt *time.Time                       `json:"ended_at,omitempty"`
}

// ReallocationChange is one line change of a revision.
type ReallocationChange struct {
	events.ReallocationChange
	Phase int `json:"phase"`
}

// ReallocationOf is a revision's API view.
func ReallocationOf(v *reallocator.Revision) Reallocation {
	out := Reallocation{Revision: v.Revision, Status: v.Status, Proposal: v.Proposal, DecidedBy: v.DecidedBy, DecidedAt: v.DecidedAt,
		Reason: v.Reason, Moves: v.Moves, EndedAt: v.EndedAt, Changes: []ReallocationChange{}}
	for _, c := range v.Changes {
		out.Changes = append(out.Changes, ReallocationChange{ReallocationChange: c.ReallocationChange, Phase: c.Phase})
	}
	return out
}

// ReallocationDecision is the optional body of POST
// /bookings/{id}/reallocations/{revision}/reject.
type ReallocationDecision struct {
	Reason string `json:"reason"`
}

func (a *server) reallocationsOrUnavailable(w http.ResponseWriter) bool {
	if a.opts.Reallocations == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "reallocations are not available in this process"})
		return false
	}
	return true
}

// listReallocations is GET /bookings/{id}/reallocations.
func (a *server) listReallocations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) || !a.reallocationsOrUnavailable(w) {
		return
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	c, err := a.campaigns.Get(ctx, id)
	if err != nil {
		a.storeError(w, err)
		return
	}
	rec, _, err := a.opts.Reallocations.Get(ctx, id)
	if err != nil {
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the reallocations cannot be read: " + err.Error()})
		return
	}
	out := ReallocationList{CampaignID: id, BudgetMicros: rec.Budget, Reallocations: []Reallocation{}}
	if c.Request != nil {
		out.BudgetMicros = c.Request.Brief.BudgetMicros
	}
	for _, v := range rec.Revisions {
		out.Reallocations = append(out.Reallocations, ReallocationOf(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *server) approveReallocation(w http.ResponseWriter, r *http.Request) {
	a.decideReallocation(w, r, true)
}
func (a *server) rejectReallocation(w http.ResponseWriter, r *http.Request) {
	a.decideReallocation(w, r, false)
}

// decideReallocation publishes the buyer's decision on a proposed
// revision. The reallocator, the record's one writer, acts on the first
// decision it reads for a revision and ignores any other; the event ids
// are the revision's own (shared with an automatic approval), so a
// decision sent twice is one event.
func (a *server) decideReallocation(w http.ResponseWriter, r *http.Request, approve bool) {
	id := r.PathValue("id")
	if !validID(w, id) || !a.reallocationsOrUnavailable(w) {
		return
	}
	n, err := strconv.Atoi(r.PathValue("revision"))
	if err != nil || n < 1 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "validation", Field: "revision", Detail: "revision must be a positive integer"})
		return
	}
	var d ReallocationDecision
	if !approve && r.ContentLength != 0 {
		if herr := decodeBody(w, r, &d); herr != nil {
			writeJSON(w, herr.status, herr.body)
			return
		}
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	rec, found, err := a.opts.Reallocations.Get(ctx, id)
	if err != nil {
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the reallocations cannot be read: " + err.Error()})
		return
	}
	var v *reallocator.Revision
	if found {
		v = rec.Revision(n)
	}
	if v == nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Detail: "campaign " + id + " has no reallocation revision " + strconv.Itoa(n)})
		return
	}
	if v.Status != reallocator.StatusProposed {
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: "reallocation " + strconv.Itoa(n) + " is " + v.Status + "; only a proposed one is approved or rejected"})
		return
	}
	now := a.now()
	name, route := "approved", "POST /bookings/{id}/reallocations/{revision}/approve"
	var payload any = &events.ReallocationApproved{CampaignID: id, Revision: n, ApprovedBy: "api", ApprovedAt: now}
	kind, status := events.KindReallocationApproved, "approved"
	if !approve {
		name, route, kind, status = "rejected", "POST /bookings/{id}/reallocations/{revision}/reject", events.KindReallocationRejected, "rejected"
		payload = &events.ReallocationRejected{CampaignID: id, Revision: n, RejectedBy: "api", Reason: d.Reason, RejectedAt: now}
	}
	sctx, sp, log := a.span(r, route, "")
	defer sp.End()
	pctx, pcancel := storeContext(r.WithContext(sctx))
	defer pcancel()
	e, err := events.New(kind, reallocator.EventID(id, n, name), "api", id, payload)
	if err == nil {
		err = a.pub.Publish(pctx, e)
	}
	if err != nil {
		log.Warn().Err(err).Str("campaign_id", id).Int("revision", n).Msg("reallocation decision not published")
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the decision could not be published, so nothing is decided; send it again: " + err.Error()})
		return
	}
	log.Info().Str("campaign_id", id).Int("revision", n).Str("decision", status).Str("event_id", e.ID()).Msg("reallocation decided")
	msg := "Approved; the reallocator applies it at the sellers. Follow it with GET /bookings/" + id + "/reallocations."
	if !approve {
		msg = "Rejected; nothing changes."
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"campaign_id": id, "revision": n, "status": status, "message": msg})
}
