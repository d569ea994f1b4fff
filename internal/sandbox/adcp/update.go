package adcp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/dealflow/dealflow/internal/flight"
	"github.com/dealflow/dealflow/internal/sandbox"
)

// updateArgs is the part of update_media_buy the sandbox reads (AdCP
// 3.1.19 media-buy/update-media-buy-request.json and package-update.json).
type updateArgs struct {
	IdempotencyKey     string          `json:"idempotency_key"`
	Account            json.RawMessage `json:"account"`
	MediaBuyID         string          `json:"media_buy_id"`
	Revision           *int            `json:"revision"`
	Paused             *bool           `json:"paused"`
	Canceled           *bool           `json:"canceled"`
	CancellationReason string          `json:"cancellation_reason"`
	Packages           []struct {
		PackageID          string   `json:"package_id"`
		Budget             *float64 `json:"budget"`
		Paused             *bool    `json:"paused"`
		Canceled           *bool    `json:"canceled"`
		CancellationReason string   `json:"cancellation_reason"`
	} `json:"packages"`
	Push *pushConfig `json:"push_notification_config"`
}

// updateMediaBuy answers update_media_buy: pause or resume, cancel, or a
// new budget, for the whole buy or per package, applied where the buy's
// flight clock stands (a paused package stops delivering, a canceled one
// for good, a new budget is delivered over the rest of the flight). The
// idempotency key replays like create_media_buy's; revision, when sent, must
// be the buy's current one (CONFLICT). Raising the budget of a package whose
// product needs manual approval is submitted and decided after
// ApprovalDelay, like a buy; everything else is applied at once.
func (a *Agent) updateMediaBuy(_ context.Context, p *principalCtx, raw json.RawMessage) result {
	var in updateArgs
	if err := json.Unmarshal(raw, &in); err != nil {
		return adcpErr("INVALID_REQUEST", "cannot read arguments: "+err.Error(), "")
	}
	if len(in.IdempotencyKey) < 16 || len(in.IdempotencyKey) > 255 {
		return adcpErr("INVALID_REQUEST", "idempotency_key is required (16-255 characters)", "idempotency_key")
	}
	key := p.principal.AccountID + "\x00update\x00" + in.IdempotencyKey
	hash := canonicalHash(raw)
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.idem[key]; ok && now.Sub(e.at) < a.cfg.ReplayTTL {
		if e.hash != hash {
			return adcpErr("IDEMPOTENCY_CONFLICT", "idempotency_key was used with a different request", "idempotency_key")
		}
		body := map[string]any{}
		for k, v := range e.result {
			body[k] = v
		}
		body["replayed"] = true
		return result{body: body, isErr: e.isErr}
	}
	res := a.decideUpdate(p, in, now)
	a.idem[key] = idemEntry{hash: hash, result: res.body, isErr: res.isErr, at: now}
	return res
}

// pkgChange is one validated package change.
type pkgChange struct {
	i                 int
	budget            *float64
	paused, cancelled *bool
}

// decideUpdate validates an update and applies it, or submits it. Called
// with a.mu held.
func (a *Agent) decideUpdate(p *principalCtx, in updateArgs, now time.Time) result {
	if err := a.checkAccount(p, in.Account); err.isErr {
		return err
	}
	b := a.buys[in.MediaBuyID]
	if b == nil || b.account != p.principal.AccountID {
		return adcpErr("MEDIA_BUY_NOT_FOUND", "unknown media buy "+in.MediaBuyID, "media_buy_id")
	}
	if in.Revision != nil && *in.Revision != b.revision {
		return adcpErr("CONFLICT", fmt.Sprintf("the media buy is at revision %d, not %d", b.revision, *in.Revision), "revision")
	}
	if b.status == "canceled" {
		return adcpErr("INVALID_STATE", "the media buy is canceled", "media_buy_id")
	}
	if in.Canceled != nil && !*in.Canceled {
		return adcpErr("VALIDATION_ERROR", "canceled can only be true", "canceled")
	}
	var changes []pkgChange
	manual := false
	for j, pu := range in.Packages {
		field := fmt.Sprintf("packages[%d]", j)
		i := -1
		for k := range b.packages {
			if b.packages[k].ID == pu.PackageID {
				i = k
			}
		}
		if i < 0 {
			return adcpErr("PACKAGE_NOT_FOUND", "the media buy has no package "+pu.PackageID, field+".package_id")
		}
		pk := b.packages[i]
		if pk.course.Cancelled {
			return adcpErr("INVALID_STATE", "package "+pk.ID+" is canceled", field+".package_id")
		}
		if pu.Canceled != nil && !*pu.Canceled {
			return adcpErr("VALIDATION_ERROR", "canceled can only be true", field+".canceled")
		}
		if pu.Budget != nil {
			nb := *pu.Budget
			spent := a.spendNow(b, pk, now)
			switch {
			case nb < 0 || math.IsNaN(nb):
				return adcpErr("VALIDATION_ERROR", "budget must not be negative", field+".budget")
			case nb < spent:
				return adcpErr("BUDGET_TOO_LOW", fmt.Sprintf("budget %.2f is below the %.2f already spent", nb, spent), field+".budget")
			}
			if nb > pk.Budget && a.catalog[pk.ProductID].ManualApproval {
				manual = true
			}
		}
		changes = append(changes, pkgChange{i: i, budget: pu.Budget, paused: pu.Paused, cancelled: pu.Canceled})
	}
	if len(changes) == 0 && in.Paused == nil && in.Canceled == nil {
		return adcpErr("VALIDATION_ERROR", "nothing to update: packages, paused or canceled", "packages")
	}
	apply := func(at time.Time) map[string]any { return a.applyUpdate(b, in, changes, at) }
	if manual {
		t := &task{id: a.nextID("task"), kind: "update_media_buy", account: b.account, status: "submitted", created: now, updated: now, push: in.Push, update: apply}
		a.tasks[t.id] = t
		if !a.closed {
			a.timers = append(a.timers, time.AfterFunc(a.cfg.ApprovalDelay, func() { a.decide(t.id) }))
		}
		return result{body: map[string]any{"status": "submitted", "task_id": t.id, "message": "the budget increase awaits the seller's approval"}}
	}
	return result{body: apply(now)}
}

// share is where a buy's flight clock stands at wall time now, 0 to 1.
func (a *Agent) share(b *mediaBuy, now time.Time) float64 {
	fw, ok := a.buyFlight(b)
	if !ok {
		return 0
	}
	return fw.Window.Elapsed(fw.Now(flight.Clock{Day: a.cfg.TimeScale}, now))
}

// spendNow is what a package has spent at wall time now.
func (a *Agent) spendNow(b *mediaBuy, pk pkg, now time.Time) float64 {
	return a.deliver(b, pk, a.share(b, now)).spend
}

// applyUpdate changes the buy and answers the update's success. Called
// with a.mu held.
func (a *Agent) applyUpdate(b *mediaBuy, in updateArgs, changes []pkgChange, now time.Time) map[string]any {
	share := a.share(b, now)
	affected := map[int]bool{}
	change := func(i int, fn func(pk *pkg, d float64)) {
		pk := &b.packages[i]
		if pk.course.Cancelled {
			return
		}
		fn(pk, share)
		affected[i] = true
	}
	for _, c := range changes {
		change(c.i, func(pk *pkg, s float64) {
			d, seed := a.packageDeliveryOf(b, *pk), b.id+"/"+pk.ID
			if c.budget != nil && *c.budget != pk.Budget {
				pk.course.SetGoal(d, pk.Budget, s, seed, *c.budget)
				pk.Budget = *c.budget
			}
			switch {
			case c.cancelled != nil && *c.cancelled:
				pk.course.Cancel(d, pk.Budget, s, seed)
			case c.paused != nil && *c.paused && !pk.course.Paused:
				pk.course.Pause(d, pk.Budget, s, seed)
			case c.paused != nil && !*c.paused && pk.course.Paused:
				pk.course.Resume(d, pk.Budget, s, seed)
			}
		})
	}
	for i := range b.packages {
		change(i, func(pk *pkg, s float64) {
			d, seed := a.packageDeliveryOf(b, *pk), b.id+"/"+pk.ID
			switch {
			case in.Canceled != nil && *in.Canceled:
				pk.course.Cancel(d, pk.Budget, s, seed)
			case in.Paused != nil && *in.Paused && !pk.course.Paused:
				pk.course.Pause(d, pk.Budget, s, seed)
			case in.Paused != nil && !*in.Paused && pk.course.Paused:
				pk.course.Resume(d, pk.Budget, s, seed)
			default:
				if !affected[i] {
					return
				}
			}
		})
	}
	b.total = 0
	live, paused := 0, 0
	for _, pk := range b.packages {
		b.total += pk.Budget
		switch {
		case pk.course.Cancelled:
		case pk.course.Paused:
			paused++
		default:
			live++
		}
	}
	switch {
	case live == 0 && paused == 0:
		b.status = "canceled"
	case live == 0:
		b.status = "paused"
	case b.status == "paused" || b.status == "canceled":
		b.status = "active"
	}
	b.revision++
	var pkgs []any
	for i, m := range a.packagesJSON(b, false) {
		if affected[i] {
			pkgs = append(pkgs, m)
		}
	}
	return map[string]any{
		"status": "completed", "media_buy_id": b.id, "media_buy_status": b.status, "revision": b.revision,
		"currency": b.currency, "total_budget": b.total, "implementation_date": ts(now),
		"affected_packages": nonNil(pkgs), "sandbox": true,
	}
}

// packageDeliveryOf is the sandbox.Delivery a package follows.
func (a *Agent) packageDeliveryOf(b *mediaBuy, p pkg) (d sandbox.Delivery) {
	d = a.cfg.Delivery.For(p.ProductID)
	if o, ok := a.delivery[b.id+"/"+p.ID]; ok {
		d = o
	}
	return d
}
