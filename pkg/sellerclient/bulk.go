package sellerclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrOperationFailed: the seller answered a bulk request but refused one of
// its operations (BulkDealOperationResult success false); the error carries
// the seller's text. Nothing else of that operation was done.
var ErrOperationFailed = errors.New("sellerclient: bulk operation refused")

// BulkAction is a bulk deal operation's action.
type BulkAction string

// Bulk actions (POST /api/v1/deals/bulk).
const (
	BulkCreate BulkAction = "create"
	BulkUpdate BulkAction = "update"
	BulkCancel BulkAction = "cancel"
)

// BulkDealOperation is one operation of a bulk request (OpenAPI
// BulkDealOperation): cancel or update name a deal_id, create a quote_id.
type BulkDealOperation struct {
	Action  BulkAction `json:"action"`
	DealID  string     `json:"deal_id,omitempty"`
	QuoteID string     `json:"quote_id,omitempty"`
	Notes   string     `json:"notes,omitempty"`
}

// BulkDealRequest is POST /api/v1/deals/bulk's body.
type BulkDealRequest struct {
	Operations []BulkDealOperation `json:"operations"`
}

// BulkDealOperationResult is the outcome of one operation.
type BulkDealOperationResult struct {
	Index   int        `json:"index"`
	Action  BulkAction `json:"action"`
	Success bool       `json:"success"`
	DealID  string     `json:"deal_id,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// BulkDealResponse is the answer: one result per operation, in order.
type BulkDealResponse struct {
	Total     int                       `json:"total"`
	Succeeded int                       `json:"succeeded"`
	Failed    int                       `json:"failed"`
	Results   []BulkDealOperationResult `json:"results"`
}

func (r *BulkDealRequest) normalize() error {
	if len(r.Operations) == 0 {
		return errors.New("operations: at least one operation is required")
	}
	for i, op := range r.Operations {
		switch op.Action {
		case BulkCancel, BulkUpdate:
			if strings.TrimSpace(op.DealID) == "" {
				return fmt.Errorf("operations[%d].deal_id is required for %s", i, op.Action)
			}
		case BulkCreate:
			if strings.TrimSpace(op.QuoteID) == "" {
				return fmt.Errorf("operations[%d].quote_id is required for create", i)
			}
		default:
			return fmt.Errorf("operations[%d].action must be create, update or cancel", i)
		}
	}
	return nil
}

func parseBulk(b []byte) (*BulkDealResponse, error) {
	var r BulkDealResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.Results == nil {
		return nil, errors.New("bulk answer without results")
	}
	return &r, nil
}

// BulkDeals runs POST {seller}/api/v1/deals/bulk with the buyer's
// credentials. The answer is returned whole; if it does not carry exactly
// one result per operation, or any operation failed, the error is an *Error
// matching ErrOperationFailed (a failed operation, with the seller's text)
// or ErrBadResponse (a missing result). The endpoint takes no idempotency
// key: callers send operations that are safe to repeat (a cancel of a
// cancelled deal) or reconcile before repeating a create.
func (c *Client) BulkDeals(ctx context.Context, sellerURL string, auth Auth, req BulkDealRequest) (*BulkDealResponse, error) {
	const op = "BulkDeals"
	res, err := post(ctx, c, op, sellerURL, "/api/v1/deals/bulk", auth, &req, req.normalize, parseBulk)
	if err != nil {
		return nil, err
	}
	u, _ := c.sellerURL(op, sellerURL)
	seen := make([]bool, len(req.Operations))
	for _, r := range res.Results {
		if r.Index < 0 || r.Index >= len(seen) {
			return res, badResponse(op, u, 200, fmt.Errorf("result index %d outside the %d operations", r.Index, len(seen)))
		}
		seen[r.Index] = true
	}
	for i, ok := range seen {
		if !ok {
			return res, badResponse(op, u, 200, fmt.Errorf("no result for operation %d", i))
		}
	}
	for _, r := range res.Results {
		if !r.Success {
			msg := r.Error
			if msg == "" {
				msg = "the seller refused it without a reason"
			}
			target := r.DealID
			if target == "" {
				target = req.Operations[r.Index].DealID + req.Operations[r.Index].QuoteID
			}
			return res, &Error{Status: 200, Code: "operation_failed", Op: op, URL: u,
				Message: fmt.Sprintf("operations[%d] %s %s: %s", r.Index, r.Action, target, msg), kinds: []error{ErrOperationFailed}}
		}
	}
	return res, nil
}
