package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/activator"
)

// The buyer side of the IAB Deals API v1.0, as the seller-agent v2.4.2
// speaks it (its POST /api/v1/deals/push and GET
// /api/v1/deals/{deal_id}/buyer-status): a seller POSTs its deal object to
// the buyer URL it was given — this API's /deals — with
// "Authorization: Bearer <the token the buyer issued it>", and asks
// GET {buyer_url}/{deal_id}/status, reading "status" from the answer. The
// buyer lists the pushed deals, approves (then the activator sets the deal
// up in the DSP) or rejects them with its X-API-Key.

// DealMetrics counts the sellers' pushes (telemetry.Metrics is one).
type DealMetrics interface {
	ObserveDealPush(outcome string)
}

// SellerTokens are the bearer tokens the buyer issued to sellers for
// pushing deals, by seller (--deal-push-tokens). The zero value accepts no
// token.
type SellerTokens struct {
	entries []sellerToken
}

type sellerToken struct{ seller, token string }

// ParseSellerTokens reads {"sellers":{"<seller url>":"<token>"}}: URLs are
// canonicalised (the seller identity of DealBooked.seller_url), each token
// has 16 to 256 characters and belongs to one seller only. Errors never
// contain a token.
func ParseSellerTokens(data []byte) (*SellerTokens, error) {
	var doc struct {
		Sellers map[string]string `json:"sellers"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("deal push tokens: want {\"sellers\":{\"<seller url>\":\"<token>\"}}: %w", err)
	}
	out := &SellerTokens{}
	seen := map[string]string{}
	urls := make([]string, 0, len(doc.Sellers))
	for u := range doc.Sellers {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	for _, raw := range urls {
		tok := doc.Sellers[raw]
		u, err := sellerclient.CanonicalURL(raw)
		if err != nil {
			return nil, fmt.Errorf("deal push tokens: seller %q: %w", raw, err)
		}
		if len(tok) < 16 || len(tok) > 256 {
			return nil, fmt.Errorf("deal push tokens: seller %s: the token must have 16 to 256 characters", u)
		}
		if other, dup := seen[tok]; dup {
			return nil, fmt.Errorf("deal push tokens: sellers %s and %s share a token; give each its own", other, u)
		}
		seen[tok] = u
		out.entries = append(out.entries, sellerToken{seller: u, token: tok})
	}
	return out, nil
}

// LoadSellerTokens reads the --deal-push-tokens file; "" is none.
func LoadSellerTokens(path string) (*SellerTokens, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("deal push tokens: %w", err)
	}
	return ParseSellerTokens(b)
}

// Seller is the seller a token was issued to. Every entry is compared, in
// constant time, so the answer's timing says nothing of which tokens exist.
func (s *SellerTokens) Seller(token string) (string, bool) {
	if s == nil || token == "" {
		return "", false
	}
	found := ""
	for _, e := range s.entries {
		if subtle.ConstantTimeCompare([]byte(token), []byte(e.token)) == 1 {
			found = e.seller
		}
	}
	return found, found != ""
}

// Len is how many sellers may push.
func (s *SellerTokens) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// PushedDeal is the IAB Deals API v1.0 deal object a seller pushes (the
// seller-agent's IABDealObject, sent without its null members). Prices are
// dollars CPM, converted to micros once, here. Members it does not know
// are ignored: a seller's newer version may add some.
type PushedDeal struct {
	DealID        string          `json:"deal_id"`
	Name          string          `json:"name"`
	DealType      string          `json:"deal_type"`
	Status        string          `json:"status"`
	FloorPriceCPM *float64        `json:"floor_price_cpm"`
	FixedPriceCPM *float64        `json:"fixed_price_cpm"`
	Currency      string          `json:"currency"`
	Inventory     map[string]any  `json:"inventory"`
	Curation      map[string]any  `json:"curation"`
	Impressions   *int64          `json:"impressions"`
	FlightStart   string          `json:"flight_start"`
	FlightEnd     string          `json:"flight_end"`
	BuyerSeatIDs  []string        `json:"buyer_seat_ids"`
	OpenRTBParams *PushedOpenRTB  `json:"openrtb_params"`
	SellerID      string          `json:"seller_id"`
	SellerDomain  string          `json:"seller_domain"`
	CreatedAt     json.RawMessage `json:"created_at"`
	UpdatedAt     json.RawMessage `json:"updated_at"`
}

// PushedOpenRTB is the pushed deal's openrtb_params.
type PushedOpenRTB struct {
	ID          string   `json:"id"`
	BidFloor    *float64 `json:"bidfloor"`
	BidFloorCur string   `json:"bidfloorcur"`
	At          *int     `json:"at"`
	WSeat       []string `json:"wseat"`
	WADomain    []string `json:"wadomain"`
}

// dealIDRE is what a deal id may be: it is a path segment of the status
// URL and a bid-stream id.
var dealIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// maxTermsBytes bounds a pushed deal's encoded terms: they travel in
// DealReceived and DealApproved, and events are at most 256 KiB.
const maxTermsBytes = 64 << 10

func fieldErr(field, reason string) error { return &events.FieldError{Field: field, Reason: reason} }

// dealTypes maps the names a seller may use to the pipeline's PG, PD, PA.
var dealTypes = map[string]string{
	"pg": "PG", "programmaticguaranteed": "PG", "programmatic_guaranteed": "PG",
	"pd": "PD", "preferreddeal": "PD", "preferred_deal": "PD",
	"pa": "PA", "privateauction": "PA", "private_auction": "PA", "pmp": "PA",
}

// Terms validates the pushed deal and returns its terms for seller. Each
// failure is a FieldError naming the pushed member.
func (p PushedDeal) Terms(seller string) (events.DealTerms, error) {
	t := events.DealTerms{DealID: p.DealID, Name: p.Name, SellerURL: seller, SellerID: p.SellerID, SellerDomain: p.SellerDomain,
		Inventory: p.Inventory, Curation: p.Curation, SellerStatus: p.Status, Currency: "USD"}
	if !dealIDRE.MatchString(p.DealID) {
		return t, fieldErr("deal_id", "must be 1-128 characters of [A-Za-z0-9._:-]")
	}
	dt, ok := dealTypes[strings.ToLower(strings.TrimSpace(p.DealType))]
	if !ok {
		return t, fieldErr("deal_type", "must be programmaticguaranteed, preferreddeal or privateauction (or PG, PD, PA)")
	}
	t.DealType = dt
	if len(p.Name) > 500 || len(p.SellerID) > 256 || len(p.SellerDomain) > 256 || len(p.Status) > 32 {
		return t, fieldErr(longest(p), "is too long")
	}
	if c := strings.ToUpper(strings.TrimSpace(p.Currency)); c != "" && c != "USD" {
		return t, fieldErr("currency", "only USD deals can be bought")
	}
	price := func(field string, v *float64) (events.Micros, error) {
		m, err := events.MicrosFromDollars(*v)
		if err != nil || m <= 0 || m > events.MaxCPMMicros {
			return 0, fieldErr(field, "must be a CPM above 0 and at most 10000")
		}
		return m, nil
	}
	var err error
	switch {
	case dt != "PA" && p.FixedPriceCPM != nil:
		t.FixedCPMMicros, err = price("fixed_price_cpm", p.FixedPriceCPM)
	case dt == "PA" && p.FloorPriceCPM != nil:
		t.FloorCPMMicros, err = price("floor_price_cpm", p.FloorPriceCPM)
	case p.OpenRTBParams != nil && p.OpenRTBParams.BidFloor != nil:
		var m events.Micros
		m, err = price("openrtb_params.bidfloor", p.OpenRTBParams.BidFloor)
		if dt == "PA" {
			t.FloorCPMMicros = m
		} else {
			t.FixedCPMMicros = m
		}
	case dt == "PA":
		return t, fieldErr("floor_price_cpm", "a private auction needs a floor price (or openrtb_params.bidfloor)")
	default:
		return t, fieldErr("fixed_price_cpm", "a guaranteed or preferred deal needs a fixed price (or openrtb_params.bidfloor)")
	}
	if err != nil {
		return t, err
	}
	if p.Impressions != nil {
		if *p.Impressions < 0 || *p.Impressions > events.MaxImpressions {
			return t, fieldErr("impressions", "must be 0 to 10^15")
		}
		t.Impressions = *p.Impressions
	}
	if t.FlightStart, err = pushedDate("flight_start", p.FlightStart); err != nil {
		return t, err
	}
	if t.FlightEnd, err = pushedDate("flight_end", p.FlightEnd); err != nil {
		return t, err
	}
	if t.FlightStart != "" && t.FlightEnd != "" && t.FlightEnd < t.FlightStart {
		return t, fieldErr("flight_end", "is before flight_start")
	}
	if err := checkIDs("buyer_seat_ids", p.BuyerSeatIDs); err != nil {
		return t, err
	}
	t.BuyerSeatIDs = p.BuyerSeatIDs
	if o := p.OpenRTBParams; o != nil {
		if o.ID != "" && o.ID != p.DealID {
			return t, fieldErr("openrtb_params.id", "must be the deal_id")
		}
		if c := strings.ToUpper(o.BidFloorCur); c != "" && c != "USD" {
			return t, fieldErr("openrtb_params.bidfloorcur", "only USD deals can be bought")
		}
		ort := &events.OpenRTBDeal{ID: p.DealID, Currency: "USD", WSeat: o.WSeat, WADomain: o.WADomain}
		if o.BidFloor != nil {
			if ort.BidFloorMicros, err = price("openrtb_params.bidfloor", o.BidFloor); err != nil {
				return t, err
			}
		}
		if o.At != nil {
			if *o.At < 1 || *o.At > 3 {
				return t, fieldErr("openrtb_params.at", "must be 1, 2 or 3")
			}
			ort.AuctionType = *o.At
		}
		if err := checkIDs("openrtb_params.wseat", o.WSeat); err != nil {
			return t, err
		}
		if err := checkIDs("openrtb_params.wadomain", o.WADomain); err != nil {
			return t, err
		}
		t.OpenRTB = ort
	}
	if b, _ := json.Marshal(t); len(b) > maxTermsBytes {
		return t, fieldErr(largestPart(p), fmt.Sprintf("the deal's terms take %d bytes; at most %d", len(b), maxTermsBytes))
	}
	return t, nil
}

func longest(p PushedDeal) string {
	switch {
	case len(p.Name) > 500:
		return "name"
	case len(p.SellerID) > 256:
		return "seller_id"
	case len(p.SellerDomain) > 256:
		return "seller_domain"
	}
	return "status"
}

func largestPart(p PushedDeal) string {
	i, _ := json.Marshal(p.Inventory)
	c, _ := json.Marshal(p.Curation)
	if len(c) > len(i) {
		return "curation"
	}
	return "inventory"
}

// checkIDs bounds a list of ids: at most 100 of at most 256 characters.
func checkIDs(field string, ids []string) error {
	if len(ids) > 100 {
		return fieldErr(field, "at most 100")
	}
	for i, s := range ids {
		if s == "" || len(s) > 256 {
			return fieldErr(field+"["+strconv.Itoa(i)+"]", "must be 1-256 characters")
		}
	}
	return nil
}

// pushedDate accepts YYYY-MM-DD or an RFC 3339 time (its UTC date).
func pushedDate(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.Format(time.DateOnly), nil
	}
	if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return ts.UTC().Format(time.DateOnly), nil
	}
	return "", fieldErr(field, "must be a date, YYYY-MM-DD (or an RFC 3339 time)")
}

// sellerRoute reports the routes a seller calls with its push token
// instead of the buyer's X-API-Key.
func sellerRoute(r *http.Request) bool {
	if r.URL.Path == "/deals" {
		return r.Method == http.MethodPost
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/deals/")
	return ok && r.Method == http.MethodGet && strings.HasSuffix(rest, "/status") && strings.Count(rest, "/") == 1
}

// bearer is the request's bearer token.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (a *server) observePush(outcome string) {
	if a.opts.DealMetrics != nil {
		a.opts.DealMetrics.ObserveDealPush(outcome)
	}
}

// seatsOrUnavailable answers 503 when the process has no seat store.
func (a *server) seatsOrUnavailable(w http.ResponseWriter) bool {
	if a.opts.Seats == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the deal endpoint is not available in this process"})
		return false
	}
	return true
}

// pushAnswer is what a seller's push is answered: the seller-agent reads
// "status" (the buyer seat status).
type pushAnswer struct {
	DealID     string            `json:"deal_id"`
	Status     events.SeatStatus `json:"status"`
	ReceivedAt time.Time         `json:"received_at"`
	Message    string            `json:"message"`
}

// pushDeal is POST /deals: a seller pushes a deal's terms.
func (a *server) pushDeal(w http.ResponseWriter, r *http.Request) {
	if !a.seatsOrUnavailable(w) {
		return
	}
	seller, ok := a.opts.SellerTokens.Seller(bearer(r))
	if !ok {
		a.observePush("unauthorized")
		detail := "send Authorization: Bearer <the token this buyer issued you>"
		if a.opts.SellerTokens.Len() == 0 {
			detail = "this buyer accepts no pushed deals (no seller has a push token: --deal-push-tokens)"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="dealflow deals"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthorized", Detail: detail})
		return
	}
	var p PushedDeal
	if e := decodeBodyWith(w, r, &p, false); e != nil {
		a.observePush("invalid")
		e.write(w)
		return
	}
	terms, err := p.Terms(seller)
	if err != nil {
		a.observePush("invalid")
		a.storeError(w, err)
		return
	}
	now := a.now()
	key := activator.SeatKey(seller, terms.DealID)
	sctx, sp, log := a.span(r, "POST /deals", "")
	defer sp.End()
	log = log.With().Str("seller", seller).Str("deal_id", terms.DealID).Logger()
	ctx, cancel := context.WithTimeout(sctx, storeTimeout)
	defer cancel()
	changed := false
	seat, err := a.opts.Seats.Transition(ctx, key, func(s *activator.Seat, exists bool) (bool, error) {
		c, err := s.Receive(exists, key, terms, now)
		changed = c
		return c, err
	})
	var se *activator.StateError
	switch {
	case errors.As(err, &se):
		a.observePush("conflict")
		log.Warn().Err(err).Msg("pushed deal refused: other terms for a deal the buyer approved")
		writeJSON(w, http.StatusConflict, apiError{Error: "conflict", Detail: se.Error()})
		return
	case err != nil:
		a.observePush("unavailable")
		a.storeError(w, err)
		return
	}
	status := seat.StatusAt(now)
	e, err := events.New(events.KindDealReceived, activator.EventID(key, "received", seat.Proposal()), "api", seat.CampaignID,
		&events.DealReceived{CampaignID: seat.CampaignID, DealKey: key, Terms: terms, Status: status, ReceivedAt: now})
	if err == nil {
		err = a.pub.Publish(ctx, e)
	}
	if err != nil {
		a.observePush("unavailable")
		log.Warn().Err(err).Msg("pushed deal recorded; its DealReceived was not published")
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the deal is recorded but could not be announced yet; push it again (the same terms change nothing): " + err.Error()})
		return
	}
	msg := "Received: it waits for the buyer's approval."
	switch {
	case !changed && status == events.SeatPending:
		msg = "Already received with these terms: it waits for the buyer's approval."
	case status != events.SeatPending:
		msg = "The buyer has this deal already (" + string(status) + ")."
	}
	if changed {
		a.observePush("received")
	} else {
		a.observePush("unchanged")
	}
	log.Info().Str("campaign_id", seat.CampaignID).Str("event_id", e.ID()).Str("status", string(status)).Bool("changed", changed).Msg("deal pushed by a seller")
	writeJSON(w, http.StatusOK, pushAnswer{DealID: terms.DealID, Status: status, ReceivedAt: seat.ReceivedAt, Message: msg})
}

// dealStatus is GET /deals/{deal_id}/status: a seller asks for the buyer
// seat status of one of its deals.
func (a *server) dealStatus(w http.ResponseWriter, r *http.Request) {
	if !a.seatsOrUnavailable(w) {
		return
	}
	id := r.PathValue("deal_id")
	tok := bearer(r)
	seller, known := a.opts.SellerTokens.Seller(tok)
	if tok != "" && !known || tok == "" && a.opts.StatusTokenRequired {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dealflow deals"`)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "unauthorized", Detail: "send Authorization: Bearer <your push token>"})
		return
	}
	if !dealIDRE.MatchString(id) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "not_found", Detail: "no such deal"})
		return
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	seat, herr := a.findSeat(ctx, id, seller)
	if herr != nil {
		if herr.body.Error == "ambiguous" {
			herr.body.Detail = "sellers have deals of this id: send Authorization: Bearer <your push token>"
		}
		herr.write(w)
		return
	}
	body := map[string]any{"deal_id": id, "status": seat.StatusAt(a.now()), "updated_at": seat.UpdatedAt}
	if known && seat.Reason != "" {
		body["reason"] = seat.Reason
	}
	writeJSON(w, http.StatusOK, body)
}

// findSeat finds deal id's record: the seller's when seller is given,
// else the only one of that id (409 ambiguous when sellers share it).
func (a *server) findSeat(ctx context.Context, id, seller string) (activator.Seat, *httpError) {
	if seller != "" {
		s, found, err := a.opts.Seats.Get(ctx, activator.SeatKey(seller, id))
		switch {
		case err != nil:
			return s, storeHTTPError(err)
		case !found:
			return s, &httpError{http.StatusNotFound, apiError{Error: "not_found", Detail: "no deal " + id + " of seller " + seller}}
		}
		return s, nil
	}
	seats, err := a.opts.Seats.Find(ctx, id)
	switch {
	case err != nil:
		return activator.Seat{}, storeHTTPError(err)
	case len(seats) == 0:
		return activator.Seat{}, &httpError{http.StatusNotFound, apiError{Error: "not_found", Detail: "no deal " + id}}
	case len(seats) > 1:
		return activator.Seat{}, &httpError{http.StatusConflict, apiError{Error: "ambiguous", Field: "seller_url",
			Detail: fmt.Sprintf("%d sellers have a deal %s: name the seller (seller_url)", len(seats), id)}}
	}
	return seats[0], nil
}

func storeHTTPError(err error) *httpError {
	return &httpError{http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the deal store cannot be reached: " + err.Error()}}
}

// DealView is one deal in GET /deals and GET /deals/{deal_id}: its buyer
// seat status now, its terms (prices in micros), who decided, and its
// activation.
type DealView struct {
	DealID     string                    `json:"deal_id"`
	SellerURL  string                    `json:"seller_url"`
	Status     events.SeatStatus         `json:"status"`
	Origin     string                    `json:"origin"`
	CampaignID string                    `json:"campaign_id"`
	LineKey    string                    `json:"line_key,omitempty"`
	Terms      events.DealTerms          `json:"terms"`
	Pushes     int                       `json:"pushes"`
	ReceivedAt time.Time                 `json:"received_at"`
	UpdatedAt  time.Time                 `json:"updated_at"`
	DecidedBy  string                    `json:"decided_by,omitempty"`
	DecidedAt  *time.Time                `json:"decided_at,omitempty"`
	Reason     string                    `json:"reason,omitempty"`
	Activation activator.ActivationState `json:"activation"`
	History    []activator.Step          `json:"history"`
}

func viewOf(s activator.Seat, now time.Time) DealView {
	h := s.History
	if h == nil {
		h = []activator.Step{}
	}
	return DealView{DealID: s.Terms.DealID, SellerURL: s.Terms.SellerURL, Status: s.StatusAt(now), Origin: s.Origin, CampaignID: s.CampaignID,
		LineKey: s.LineKey, Terms: s.Terms, Pushes: s.Pushes, ReceivedAt: s.ReceivedAt, UpdatedAt: s.UpdatedAt, DecidedBy: s.DecidedBy,
		DecidedAt: s.DecidedAt, Reason: s.Reason, Activation: s.Activation, History: h}
}

// listDeals is GET /deals: every deal with a buyer seat record, newest
// change first, filtered by status (pending: those waiting for approval).
func (a *server) listDeals(w http.ResponseWriter, r *http.Request) {
	if !a.seatsOrUnavailable(w) {
		return
	}
	q := r.URL.Query()
	status := events.SeatStatus(q.Get("status"))
	if status != "" && !status.Valid() {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "status", Detail: "must be one of " + strings.Join(status.EnumValues(), ", ")})
		return
	}
	limit, offset := 50, 0
	for _, p := range []struct {
		name   string
		v      *int
		lo, hi int
	}{{"limit", &limit, 1, 1000}, {"offset", &offset, 0, 1 << 30}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < p.lo || n > p.hi {
				writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: p.name, Detail: fmt.Sprintf("must be an integer from %d to %d", p.lo, p.hi)})
				return
			}
			*p.v = n
		}
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	seats, err := a.opts.Seats.List(ctx)
	if err != nil {
		storeHTTPError(err).write(w)
		return
	}
	now := a.now()
	counts := map[string]int{}
	rows := []DealView{}
	total := 0
	for _, s := range seats {
		st := s.StatusAt(now)
		counts[string(st)]++
		if status != "" && st != status {
			continue
		}
		if total >= offset && len(rows) < limit {
			rows = append(rows, viewOf(s, now))
		}
		total++
	}
	writeJSON(w, http.StatusOK, map[string]any{"deals": rows, "total": total, "limit": limit, "offset": offset, "counts": counts})
}

// getDeal is GET /deals/{deal_id}?seller_url=.
func (a *server) getDeal(w http.ResponseWriter, r *http.Request) {
	if !a.seatsOrUnavailable(w) {
		return
	}
	seller, ok := sellerParam(w, r.URL.Query().Get("seller_url"))
	if !ok {
		return
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	seat, herr := a.findSeat(ctx, r.PathValue("deal_id"), seller)
	if herr != nil {
		herr.write(w)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(seat, a.now()))
}

func sellerParam(w http.ResponseWriter, raw string) (string, bool) {
	if raw == "" {
		return "", true
	}
	u, err := sellerclient.CanonicalURL(raw)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "seller_url", Detail: "must be a seller URL: " + err.Error()})
		return "", false
	}
	return u, true
}

// DealDecision is the optional body of POST /deals/{deal_id}/approve and
// /reject: the seller, when two sellers have deals of that id, and the
// reason of a rejection (the seller reads it with its status).
type DealDecision struct {
	SellerURL string `json:"seller_url"`
	Reason    string `json:"reason"`
}

func (a *server) decision(w http.ResponseWriter, r *http.Request) (DealDecision, activator.Seat, bool) {
	var d DealDecision
	if r.ContentLength != 0 {
		if e := decodeBody(w, r, &d); e != nil {
			e.write(w)
			return d, activator.Seat{}, false
		}
	}
	if len(d.Reason) > 500 {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "reason", Detail: "must be at most 500 characters"})
		return d, activator.Seat{}, false
	}
	seller, ok := sellerParam(w, d.SellerURL)
	if !ok {
		return d, activator.Seat{}, false
	}
	ctx, cancel := storeContext(r)
	defer cancel()
	seat, herr := a.findSeat(ctx, r.PathValue("deal_id"), seller)
	if herr != nil {
		herr.write(w)
		return d, seat, false
	}
	return d, seat, true
}

// approveDeal is POST /deals/{deal_id}/approve. The DealApproved is
// published before the record changes: if the publication fails nothing
// is approved and the caller tries again; once it is published the
// activator acts on it even if this process stops before the record's
// write (the activator applies the same approval itself).
func (a *server) approveDeal(w http.ResponseWriter, r *http.Request) {
	if !a.seatsOrUnavailable(w) {
		return
	}
	_, seat, ok := a.decision(w, r)
	if !ok {
		return
	}
	now := a.now()
	if seat.Status != events.SeatPending {
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: "the deal is " + string(seat.StatusAt(now)) + "; only a pending deal is approved"})
		return
	}
	sctx, sp, log := a.span(r, "POST /deals/{deal_id}/approve", "")
	defer sp.End()
	log = log.With().Str("campaign_id", seat.CampaignID).Str("seller", seat.Terms.SellerURL).Str("deal_id", seat.Terms.DealID).Logger()
	ctx, cancel := context.WithTimeout(sctx, storeTimeout)
	defer cancel()
	e, err := events.New(events.KindDealApproved, activator.EventID(seat.Key, "approved", seat.Proposal()), "api", seat.CampaignID,
		&events.DealApproved{CampaignID: seat.CampaignID, DealKey: seat.Key, ApprovedBy: "api", Terms: seat.Terms, ApprovedAt: now})
	if err == nil {
		err = a.pub.Publish(ctx, e)
	}
	if err != nil {
		log.Warn().Err(err).Msg("deal approval not published; nothing approved")
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the approval could not be published, so nothing is approved; approve again: " + err.Error()})
		return
	}
	seat, err = a.opts.Seats.Transition(ctx, seat.Key, func(s *activator.Seat, exists bool) (bool, error) {
		return s.Approve(exists, seat.TermsHash, "api", now)
	})
	var se *activator.StateError
	switch {
	case errors.As(err, &se):
		log.Warn().Err(err).Str("event_id", e.ID()).Msg("deal changed while being approved; the activator will not act on the approval")
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: se.Error()})
		return
	case err != nil:
		// Published: the activator records the approval itself.
		log.Warn().Err(err).Str("event_id", e.ID()).Msg("deal approval published; its record is written by the activator")
	}
	log.Info().Str("event_id", e.ID()).Str("by", "api").Msg("pushed deal approved")
	writeJSON(w, http.StatusOK, map[string]any{"deal_id": seat.Terms.DealID, "seller_url": seat.Terms.SellerURL, "status": events.SeatApproved,
		"message": "Approved; the activator sets it up in the DSP. Follow it with GET /deals/" + seat.Terms.DealID + "."})
}

// rejectDeal is POST /deals/{deal_id}/reject. The record changes first
// and DealRejected is published after (an audit of the decision); if that
// publication fails, rejecting again publishes it.
func (a *server) rejectDeal(w http.ResponseWriter, r *http.Request) {
	if !a.seatsOrUnavailable(w) {
		return
	}
	d, seat, ok := a.decision(w, r)
	if !ok {
		return
	}
	reason := "rejected by the buyer"
	if d.Reason != "" {
		reason += ": " + d.Reason
	}
	now := a.now()
	sctx, sp, log := a.span(r, "POST /deals/{deal_id}/reject", "")
	defer sp.End()
	log = log.With().Str("campaign_id", seat.CampaignID).Str("seller", seat.Terms.SellerURL).Str("deal_id", seat.Terms.DealID).Logger()
	ctx, cancel := context.WithTimeout(sctx, storeTimeout)
	defer cancel()
	seat, err := a.opts.Seats.Transition(ctx, seat.Key, func(s *activator.Seat, exists bool) (bool, error) {
		return s.Reject(exists, "api", reason, now)
	})
	var se *activator.StateError
	switch {
	case errors.As(err, &se):
		writeJSON(w, http.StatusConflict, apiError{Error: "invalid_state", Detail: se.Error()})
		return
	case err != nil:
		storeHTTPError(err).write(w)
		return
	}
	at := now
	if seat.DecidedAt != nil {
		at = *seat.DecidedAt
	}
	e, err := events.New(events.KindDealRejected, activator.EventID(seat.Key, "rejected", seat.Proposal()), "api", seat.CampaignID,
		&events.DealRejected{CampaignID: seat.CampaignID, DealKey: seat.Key, DealID: seat.Terms.DealID, SellerURL: seat.Terms.SellerURL,
			RejectedBy: seat.DecidedBy, Reason: seat.Reason, RejectedAt: at})
	if err == nil {
		err = a.pub.Publish(ctx, e)
	}
	if err != nil {
		retryAfter(w, storeTimeout)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "unavailable", Detail: "the deal is rejected but the event was not published; reject again to publish it: " + err.Error()})
		return
	}
	log.Info().Str("event_id", e.ID()).Str("reason", seat.Reason).Msg("pushed deal rejected")
	writeJSON(w, http.StatusOK, map[string]any{"deal_id": seat.Terms.DealID, "seller_url": seat.Terms.SellerURL, "status": events.SeatRejected, "message": seat.Reason})
}
