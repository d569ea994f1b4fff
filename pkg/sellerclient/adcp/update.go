package adcp

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dealflow/dealflow/pkg/events"
)

// PackageUpdate is one package's change (media-buy/package-update.json) in
// micros: nil fields are left as they are.
type PackageUpdate struct {
	PackageID string
	// BudgetMicros is the package's new budget, in micros of the buy's
	// currency (sent floored to its minor unit).
	BudgetMicros *events.Micros
	Paused       *bool
	// Canceled cancels the package for good (only true is sent).
	Canceled           bool
	CancellationReason string
}

// MediaBuyUpdate is update_media_buy's request (AdCP 3.1.19
// media-buy/update-media-buy-request.json), the parts dealflow changes.
type MediaBuyUpdate struct {
	IdempotencyKey string
	Account        AccountRef
	MediaBuyID     string
	// Revision, when set, is the buy's expected current revision: the
	// seller refuses the update with CONFLICT if it moved on.
	Revision int
	// Paused pauses (true) or resumes (false) the whole buy.
	Paused *bool
	// Canceled cancels the whole buy, for good.
	Canceled           bool
	CancellationReason string
	Packages           []PackageUpdate
	Currency           string // of the budgets (default USD)
	Push               *PushConfig
}

type wirePackageUpdate struct {
	PackageID          string      `json:"package_id"`
	Budget             json.Number `json:"budget,omitempty"`
	Paused             *bool       `json:"paused,omitempty"`
	Canceled           bool        `json:"canceled,omitempty"`
	CancellationReason string      `json:"cancellation_reason,omitempty"`
}

type updateRequest struct {
	IdempotencyKey     string              `json:"idempotency_key"`
	Account            AccountRef          `json:"account"`
	MediaBuyID         string              `json:"media_buy_id"`
	Revision           int                 `json:"revision,omitempty"`
	Paused             *bool               `json:"paused,omitempty"`
	Canceled           bool                `json:"canceled,omitempty"`
	CancellationReason string              `json:"cancellation_reason,omitempty"`
	Packages           []wirePackageUpdate `json:"packages,omitempty"`
	Push               *wirePush           `json:"push_notification_config,omitempty"`
}

// encode validates u and builds the wire request.
func (u MediaBuyUpdate) encode() (json.RawMessage, error) {
	if !idemKeyRE.MatchString(u.IdempotencyKey) {
		return nil, validationError("idempotency_key must be 16-255 characters of [A-Za-z0-9_.:-]")
	}
	if u.Account == (AccountRef{}) {
		return nil, validationError("account is required")
	}
	if u.MediaBuyID == "" {
		return nil, validationError("media_buy_id is required")
	}
	if u.Revision < 0 {
		return nil, validationError("revision must be positive")
	}
	if len(u.CancellationReason) > 500 {
		return nil, validationError("cancellation_reason is at most 500 characters")
	}
	w := updateRequest{IdempotencyKey: u.IdempotencyKey, Account: u.Account, MediaBuyID: u.MediaBuyID, Revision: u.Revision,
		Paused: u.Paused, Canceled: u.Canceled}
	if u.Canceled {
		w.CancellationReason = u.CancellationReason
	}
	for i, p := range u.Packages {
		if p.PackageID == "" {
			return nil, validationError(fmt.Sprintf("packages[%d]: package_id is required", i))
		}
		if len(p.CancellationReason) > 500 {
			return nil, validationError(fmt.Sprintf("packages[%d]: cancellation_reason is at most 500 characters", i))
		}
		wp := wirePackageUpdate{PackageID: p.PackageID, Paused: p.Paused, Canceled: p.Canceled}
		if p.Canceled {
			wp.CancellationReason = p.CancellationReason
		}
		if p.BudgetMicros != nil {
			if *p.BudgetMicros < 0 {
				return nil, validationError(fmt.Sprintf("packages[%d]: budget must not be negative", i))
			}
			b := MinorUnitFloor(*p.BudgetMicros, u.Currency)
			wp.Budget = decimal(b)
			if b == 0 {
				wp.Budget = "0"
			}
		}
		if wp.Budget == "" && wp.Paused == nil && !wp.Canceled {
			return nil, validationError(fmt.Sprintf("packages[%d]: nothing to change", i))
		}
		w.Packages = append(w.Packages, wp)
	}
	if len(w.Packages) == 0 && w.Paused == nil && !w.Canceled {
		return nil, validationError("nothing to update: packages, paused or canceled")
	}
	if p := u.Push; p != nil {
		w.Push = &wirePush{URL: p.URL, OperationID: p.OperationID, Token: string(p.Token)}
		if p.BearerCredentials != "" {
			w.Push.Authentication = &wireAuth{Schemes: []string{"Bearer"}, Credentials: string(p.BearerCredentials)}
		}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, validationError("cannot encode request: " + err.Error())
	}
	return b, nil
}

// UpdateMediaBuy changes a booked buy: its packages' budgets, pause or
// resume, cancel. The answer is the updated buy (Booked, with Revision,
// MediaBuyStatus, TotalBudgetMicros and the affected packages' full state
// in Packages), or Status "submitted" with a TaskID to poll with
// GetTaskStatus (whose MediaBuy is then the update's result) when the
// seller queues the change for approval. Seller refusals are *Error
// (MEDIA_BUY_NOT_FOUND, PACKAGE_NOT_FOUND, CONFLICT, INVALID_STATE,
// NOT_CANCELLABLE, BUDGET_TOO_LOW, ...). Retries send the same key and
// bytes: the seller applies the update at most once.
func (c *Client) UpdateMediaBuy(ctx context.Context, s Seller, u MediaBuyUpdate) (*MediaBuy, error) {
	args, err := u.encode()
	if err != nil {
		e := err.(*Error)
		e.Op, e.Seller = OpUpdateMediaBuy, s.URL
		return nil, e
	}
	var out *MediaBuy
	err = c.run(ctx, OpUpdateMediaBuy, s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		raw, err := callTool(ctx, sess, tr, OpUpdateMediaBuy, args)
		if err != nil {
			return err
		}
		out, err = decodeUpdate(raw)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeUpdate reads update_media_buy's answer: its success carries the
// affected packages where a buy carries packages.
func decodeUpdate(raw json.RawMessage) (*MediaBuy, error) {
	var w struct {
		Affected json.RawMessage `json:"affected_packages"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, badResponse("update_media_buy: "+err.Error(), err)
	}
	if len(w.Affected) > 0 && string(w.Affected) != "null" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, badResponse("update_media_buy: "+err.Error(), err)
		}
		m["packages"] = w.Affected
		delete(m, "affected_packages")
		raw, _ = json.Marshal(m)
	}
	return decodeBuy(raw)
}
