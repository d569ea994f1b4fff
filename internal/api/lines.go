package api

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/booker"
)

// Line changes through the API: pause, resume or cancel one booked line,
// or cancel every line of a campaign. The API checks the line in the
// booking ledger, publishes a LineChangeRequested and answers 202 with its
// change_id; the booker applies it at the seller and publishes LineChanged
// or LineChangeFailed (and LinePaused, LineResumed, DealCancelled), which
// the campaign's webhook receives.

// LineChangeRequest is the optional body of the line change routes.
type LineChangeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// LineChangeAnswer is the 202 answer of a line change: the change is
// requested, its outcome follows as events.
type LineChangeAnswer struct {
	ChangeID string            `json:"change_id"`
	Status   string            `json:"status"`
	LineKey  string            `json:"line_key"`
	Action   events.LineAction `json:"action"`
}

// CampaignCancelAnswer is the 202 answer of POST /bookings/{id}/cancel.
type CampaignCancelAnswer struct {
	Status  string             `json:"status"`
	Changes []LineChangeAnswer `json:"changes"`
}

// LineView is one booked line of a job, as the ledger knows it after the
// booking: its state at the seller and its current budget.
type LineView struct {
	LineKey         string              `json:"line_key"`
	State           events.LineState    `json:"state"`
	BudgetMicros    events.Micros       `json:"budget_micros"`
	Budget          float64             `json:"budget"`
	SellerURL       string              `json:"seller_url"`
	PackageID       string              `json:"package_id"`
	Protocol        events.Protocol     `json:"protocol"`
	DealIDs         []string            `json:"deal_ids,omitempty"`
	MediaBuyID      string              `json:"media_buy_id,omitempty"`
	SellerPackageID string              `json:"seller_package_id,omitempty"`
	DeliveredMicros events.Micros       `json:"delivered_spend_micros,omitempty"`
	PendingChange   string              `json:"pending_change,omitempty"`
	Actions         []events.LineAction `json:"actions"`
}

// linesOf are the booked lines of a ledger, in line key order, and its
// committed spend.
func linesOf(led booker.Ledger) ([]LineView, events.Micros) {
	out := []LineView{}
	for _, l := range led.Lines {
		if l.State != booker.LineBooked || l.Deal == nil {
			continue
		}
		d := l.Deal
		v := LineView{LineKey: l.Key, State: l.LineState(), BudgetMicros: l.SpendMicros, Budget: l.SpendMicros.Dollars(), SellerURL: d.SellerURL,
			PackageID: d.PackageID, Protocol: d.Protocol.Or(), MediaBuyID: d.MediaBuyID, SellerPackageID: d.SellerPackageID,
			DeliveredMicros: l.DeliveredMicros, PendingChange: l.PendingChange, Actions: actionsOf(l)}
		if !d.Protocol.IsADCP() {
			for _, x := range l.Deals() {
				v.DealIDs = append(v.DealIDs, x.DealID)
			}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LineKey < out[j].LineKey })
	return out, led.Committed()
}

// actionsOf are the changes a booked line accepts now.
func actionsOf(l *booker.LedgerLine) []events.LineAction {
	switch {
	case l.LineState() == events.LineStateCancelled:
		return []events.LineAction{}
	case l.Deal.Protocol.IsADCP() && l.LineState() == events.LineStatePaused:
		return []events.LineAction{events.LineResume, events.LineCancel, events.LineSetBudget}
	case l.Deal.Protocol.IsADCP():
		return []events.LineAction{events.LinePause, events.LineCancel, events.LineSetBudget}
	}
	return []events.LineAction{events.LineCancel, events.LineSetBudget}
}

// ledger reads a campaign's booking ledger; found is false when nothing
// was booked yet. An answer was written when ok is false.
func (a *server) ledger(w http.ResponseWriter, r *http.Request, id string) (led booker.Ledger, found, ok bool) {
	if a.opts.Ledger == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "line changes are not available in this process (no booking ledger)"})
		return led, false, false
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	if _, err := a.campaigns.Get(ctx, id); err != nil {
		a.storeError(w, err)
		return led, false, false
	}
	led, found, err := a.opts.Ledger.Get(ctx, id)
	if err != nil {
		a.storeError(w, err)
		return led, false, false
	}
	return led, found, true
}

// lineChange reads the body of a line change: optional, a reason of at
// most 500 characters.
func lineChangeBody(w http.ResponseWriter, r *http.Request) (LineChangeRequest, bool) {
	var req LineChangeRequest
	if r.ContentLength != 0 {
		if e := decodeBody(w, r, &req); e != nil {
			e.write(w)
			return req, false
		}
	}
	if len(req.Reason) > 500 {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "reason", Detail: "must be at most 500 characters"})
		return req, false
	}
	return req, true
}

func (a *server) pauseLine(w http.ResponseWriter, r *http.Request) {
	a.changeLine(w, r, events.LinePause)
}
func (a *server) resumeLine(w http.ResponseWriter, r *http.Request) {
	a.changeLine(w, r, events.LineResume)
}
func (a *server) cancelLine(w http.ResponseWriter, r *http.Request) {
	a.changeLine(w, r, events.LineCancel)
}

// changeLine answers POST /bookings/{id}/lines/{line_key}/{action}: 404
// for an unknown job or line, 409 for a line whose state refuses the
// action (cancelled, not booked yet), 422 for an action its seller's
// protocol does not offer (an IAB line has no pause), else 202 once the
// LineChangeRequested is published.
func (a *server) changeLine(w http.ResponseWriter, r *http.Request, action events.LineAction) {
	req, ok := lineChangeBody(w, r)
	if !ok {
		return
	}
	id, key := r.PathValue("id"), r.PathValue("line_key")
	if !validID(w, id) {
		return
	}
	led, found, ok := a.ledger(w, r, id)
	if !ok {
		return
	}
	var line *booker.LedgerLine
	if found {
		line = led.Lines[key]
	}
	switch {
	case line == nil:
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Field: "line_key", Detail: "job " + id + " has no line " + key})
		return
	case line.State != booker.LineBooked || line.Deal == nil:
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Field: "line_key", Detail: "line " + key + " is not booked (" + line.State + ")"})
		return
	case line.LineState() == events.LineStateCancelled:
		writeJSON(w, http.StatusConflict, apiError{Error: "conflict", Field: "line_key", Detail: "line " + key + " is already cancelled"})
		return
	case action != events.LineCancel && !line.Deal.Protocol.IsADCP():
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "unsupported", Field: "line_key",
			Detail: "line " + key + " is an IAB deal: the IAB Deals API has no " + string(action) + "; cancel it, or pause it in the DSP"})
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = string(action) + " requested through the bookings API"
	}
	ans, err := a.requestChange(r, id, key, action, reason)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, ans)
}

// requestChange publishes one LineChangeRequested under a new change_id
// (its event id too).
func (a *server) requestChange(r *http.Request, id, key string, action events.LineAction, reason string) (LineChangeAnswer, error) {
	changeID := events.NewID()
	e, err := events.New(events.KindLineChangeRequested, changeID, "api", id, events.LineChangeRequested{CampaignID: id, ChangeID: changeID,
		LineKey: key, Action: action, Reason: events.ShortReason(reason), RequestedBy: events.RequestedByAPI, RequestedAt: a.now()})
	if err != nil {
		return LineChangeAnswer{}, err
	}
	sctx, sp, log := a.span(r, "POST /bookings/{id}/lines/{line_key}/"+string(action), "")
	defer sp.End()
	ctx, cancel := context.WithTimeout(sctx, storeTimeout)
	defer cancel()
	if err := a.pub.Publish(ctx, e); err != nil {
		return LineChangeAnswer{}, errors.Join(errNotPublished, err)
	}
	log.Info().Str("campaign_id", id).Str("line_key", key).Str("action", string(action)).Str("change_id", changeID).Msg("line change requested")
	return LineChangeAnswer{ChangeID: changeID, Status: "requested", LineKey: key, Action: action}, nil
}

// errNotPublished is a change request the broker did not take: nothing
// was requested.
var errNotPublished = errors.New("the line change could not be published; nothing was requested, send it again")

// cancelCampaign answers POST /bookings/{id}/cancel: a cancel of every
// booked line not cancelled yet (409 when there is none).
func (a *server) cancelCampaign(w http.ResponseWriter, r *http.Request) {
	req, ok := lineChangeBody(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	led, _, ok := a.ledger(w, r, id)
	if !ok {
		return
	}
	lines, _ := linesOf(led)
	reason := req.Reason
	if reason == "" {
		reason = "campaign cancelled through the bookings API"
	}
	ans := CampaignCancelAnswer{Status: "requested", Changes: []LineChangeAnswer{}}
	for _, l := range lines {
		if l.State == events.LineStateCancelled {
			continue
		}
		c, err := a.requestChange(r, id, l.LineKey, events.LineCancel, reason)
		if err != nil {
			a.storeError(w, err)
			return
		}
		ans.Changes = append(ans.Changes, c)
	}
	if len(ans.Changes) == 0 {
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: "job " + id + " has no booked line left to cancel"})
		return
	}
	writeJSON(w, http.StatusAccepted, ans)
}

// LedgerStore is the booking ledger the API reads (bus.Store[booker.Ledger]).
type LedgerStore interface {
	Get(ctx context.Context, key string) (booker.Ledger, bool, error)
}

var _ LedgerStore = (*bus.Store[booker.Ledger])(nil)
