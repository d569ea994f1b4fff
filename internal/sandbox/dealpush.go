package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The seller side of the IAB Deals API v1.0 as the seller-agent v2.4.2
// serves it (routers/deals.py, services/deals_api.py): POST
// /api/v1/deals/push sends a deal object to each buyer URL given (with
// "Authorization: Bearer <buyer_api_keys[i]>" when a key is given) and
// reports each buyer's answer; GET /api/v1/deals/{id}/buyer-status asks
// {buyer_url}/{deal_id}/status, without a key, and reports the status.
// A buyer's deal endpoint is tested against exactly these requests.

// pushTimeout bounds one call to a buyer.
const pushTimeout = 10 * time.Second

// buyerSeatStatuses are the statuses the seller understands in a buyer's
// answer; anything else reads as pending.
var buyerSeatStatuses = map[string]bool{"pending": true, "approved": true, "rejected": true, "ready_to_serve": true, "active": true, "complete": true}

// iabDealTypes normalises a deal type as the seller does.
var iabDealTypes = map[string]string{
	"programmatic_guaranteed": "programmaticguaranteed", "preferred_deal": "preferreddeal", "private_auction": "privateauction",
	"PG": "programmaticguaranteed", "PD": "preferreddeal", "PA": "privateauction",
}

// iabDealObject builds the deal object the seller pushes (its
// IABDealObject without null members).
func (s *Seller) iabDealObject(dealID, dealType string, price float64, name string, impressions *int64, flightStart, flightEnd *string, seats []string) map[string]any {
	nt := dealType
	if m, ok := iabDealTypes[dealType]; ok {
		nt = m
	}
	fixed := nt == "programmaticguaranteed" || nt == "preferreddeal"
	ortb := map[string]any{"id": dealID, "bidfloor": price, "bidfloorcur": "USD", "at": 1}
	if fixed {
		ortb["at"] = 3
	}
	if len(seats) > 0 {
		ortb["wseat"] = seats
	}
	if name == "" {
		name = "Deal " + dealID
	}
	if seats == nil {
		seats = []string{}
	}
	now := s.now().UTC().Format("2006-01-02T15:04:05.000000+00:00")
	obj := map[string]any{"deal_id": dealID, "name": name, "deal_type": nt, "status": "pending", "currency": "USD",
		"buyer_seat_ids": seats, "openrtb_params": ortb, "seller_id": s.orgID, "seller_domain": s.slug + ".sandbox.example",
		"created_at": now, "updated_at": now}
	if fixed {
		obj["fixed_price_cpm"] = price
	} else {
		obj["floor_price_cpm"] = price
	}
	if impressions != nil {
		obj["impressions"] = *impressions
	}
	if flightStart != nil {
		obj["flight_start"] = *flightStart
	}
	if flightEnd != nil {
		obj["flight_end"] = *flightEnd
	}
	return obj
}

// handlePushDeal is POST /api/v1/deals/push (DealPushRequest).
func (s *Seller) handlePushDeal(w http.ResponseWriter, r *http.Request) {
	b, jerr := parseBody(r, readBody(r))
	if jerr != nil {
		writeValidation(w, jerr)
		return
	}
	var v validator
	obj, _ := b.object(&v)
	body := []any{"body"}
	var (
		dealID, dealType, name, fs, fe *string
		urls, keys, seats              []string
		price                          *float64
		imps                           *int64
	)
	if obj != nil {
		dealID = v.str(obj, body, "deal_id", true, 0)
		if _, ok := obj["buyer_urls"]; !ok {
			v.add("missing", loc(body, "buyer_urls"), "Field required", obj, nil)
		}
		urls = v.stringList(obj, body, "buyer_urls")
		keys = v.stringList(obj, body, "buyer_api_keys")
		dealType = v.str(obj, body, "deal_type", false, 0)
		price = v.number(obj, body, "price", false)
		name = v.str(obj, body, "name", false, 0)
		imps = v.laxInt(obj, body, "impressions", nil)
		fs = v.str(obj, body, "flight_start", false, 0)
		fe = v.str(obj, body, "flight_end", false, 0)
		seats = v.stringList(obj, body, "buyer_seat_ids")
	}
	if !v.ok() {
		writeValidation(w, v.errs)
		return
	}
	// What the request leaves out comes from the stored deal, as the
	// seller does; a stored price is Money, read as dollars.
	dt, p, nm := "PD", 0.0, ""
	s.mu.Lock()
	if d := s.deals[*dealID]; d != nil {
		if t, ok := d.wire["deal_type"].(string); ok {
			dt = t
		}
		if pr, ok := d.wire["pricing"].(wirePricing); ok && pr.FinalCPM != nil {
			p = float64(pr.FinalCPM.AmountMicros) / 1e6
		}
	}
	s.mu.Unlock()
	if dealType != nil {
		dt = *dealType
	}
	if price != nil && *price != 0 {
		p = *price
	}
	if name != nil {
		nm = *name
	}
	deal := s.iabDealObject(*dealID, dt, p, nm, imps, fs, fe, seats)
	payload, _ := encodeJSON(deal)
	client := &http.Client{Timeout: pushTimeout}
	results := make([]map[string]any, 0, len(urls))
	ok := 0
	for i, u := range urls {
		res := map[string]any{"deal_id": *dealID, "buyer_url": u, "success": false, "buyer_status": nil, "response_code": nil, "error": nil,
			"pushed_at": s.now().UTC().Format(time.RFC3339Nano)}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u, bytes.NewReader(payload))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			if i < len(keys) && keys[i] != "" {
				req.Header.Set("Authorization", "Bearer "+keys[i])
			}
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				_ = resp.Body.Close()
				res["response_code"] = resp.StatusCode
				switch resp.StatusCode {
				case 200, 201, 202:
					res["success"], res["buyer_status"] = true, statusOf(raw)
					ok++
				default:
					text := string(raw)
					if len(text) > 200 {
						text = text[:200]
					}
					res["error"] = "HTTP " + strconv.Itoa(resp.StatusCode) + ": " + text
				}
			}
		}
		if err != nil {
			res["error"] = err.Error()
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deal_id": *dealID, "pushed_to": len(results), "succeeded": ok, "failed": len(results) - ok, "results": results})
}

// statusOf reads a buyer's answer's status, pending when it says none or
// one the seller does not know.
func statusOf(raw []byte) string {
	var b struct {
		Status string `json:"status"`
	}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &b)
	}
	if buyerSeatStatuses[b.Status] {
		return b.Status
	}
	return "pending"
}

// handleBuyerStatus is GET /api/v1/deals/{id}/buyer-status?buyer_url=.
func (s *Seller) handleBuyerStatus(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	buyer := r.URL.Query().Get("buyer_url")
	if _, present := r.URL.Query()["buyer_url"]; !present {
		writeValidation(w, []verr{{Type: "missing", Loc: []any{"query", "buyer_url"}, Msg: "Field required"}})
		return
	}
	out := map[string]any{"deal_id": id, "buyer_url": buyer, "buyer_status": "pending", "last_checked": s.now().UTC().Format(time.RFC3339Nano), "error": nil}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, buyer+"/"+url.PathEscape(id)+"/status", nil)
	if err == nil {
		var resp *http.Response
		if resp, err = (&http.Client{Timeout: pushTimeout}).Do(req); err == nil {
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			if resp.StatusCode >= 400 {
				out["error"] = "Client error '" + resp.Status + "' for url '" + req.URL.String() + "'"
			} else {
				out["buyer_status"] = statusOf(raw)
			}
		}
	}
	if err != nil {
		out["error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}
