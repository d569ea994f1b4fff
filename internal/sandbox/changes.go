package sandbox

import (
	"encoding/json"
	"net/http"
)

// bulkOp is one operation of POST /api/v1/deals/bulk (BulkDealOperation).
type bulkOp struct {
	Action  string  `json:"action"`
	DealID  *string `json:"deal_id"`
	QuoteID *string `json:"quote_id"`
	Notes   *string `json:"notes"`
}

// handleBulkDeals is POST /api/v1/deals/bulk, the seller-agent's batch of
// deal operations, each processed on its own with a per-operation result
// (BulkDealResponse). cancel stops the deal's delivery for good, where its
// flight clock stands (cancelling a cancelled deal succeeds again, so a
// buyer's retry is harmless); update records the notes; create is not
// offered by the sandbox (a buyer books with POST /api/v1/deals, which
// takes an idempotency key) and fails its operation.
func (s *Seller) handleBulkDeals(w http.ResponseWriter, r *http.Request) {
	raw := readBody(r)
	if _, ok := s.authOptional(w, r); !ok {
		return
	}
	var in struct {
		Operations *[]bulkOp `json:"operations"`
	}
	if err := json.Unmarshal(raw, &in); err != nil || in.Operations == nil {
		writeValidation(w, []verr{{Type: "missing", Loc: []any{"body", "operations"}, Msg: "Field required", Input: nil}})
		return
	}
	now := s.now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]any, 0, len(*in.Operations))
	ok := 0
	for i, op := range *in.Operations {
		res := map[string]any{"index": i, "action": op.Action, "success": false, "deal_id": nil, "error": nil}
		fail := func(msg string) { res["error"] = msg }
		switch op.Action {
		case "cancel", "update":
			if op.DealID == nil || *op.DealID == "" {
				fail("deal_id is required for " + op.Action)
				break
			}
			id := *op.DealID
			res["deal_id"] = id
			rec := s.deals[id]
			if rec == nil {
				fail("Deal '" + id + "' not found")
				break
			}
			if op.Action == "update" {
				if rec.status == "cancelled" {
					fail("Deal '" + id + "' is cancelled")
					break
				}
				if op.Notes != nil {
					rec.wire["notes"] = *op.Notes
				}
				res["success"] = true
				break
			}
			if rec.status != "cancelled" {
				d := &rec.delivery
				share := d.flight.Window.Elapsed(d.flight.Now(s.clock, now))
				d.course.Cancel(d.delivery, float64(d.goal), share, id)
				rec.status = "cancelled"
			}
			res["success"] = true
		case "create":
			fail("create is not offered by this seller's bulk endpoint; book the quote with POST /api/v1/deals")
		default:
			fail("Unknown action '" + op.Action + "'")
		}
		if res["success"] == true {
			ok++
		}
		results = append(results, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": len(results), "succeeded": ok, "failed": len(results) - ok, "results": results})
}
