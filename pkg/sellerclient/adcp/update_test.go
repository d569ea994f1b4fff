package adcp

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/checkfor"
	sbx "github.com/dealflow/dealflow/internal/sandbox/adcp"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

func micro(m events.Micros) *events.Micros { return &m }
func flag(b bool) *bool                    { return &b }

// TestUpdateMediaBuy: budget, pause, resume and cancel of a package, each
// applied once per key and followed by the seller's delivery.
func TestUpdateMediaBuy(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newEnv(t, func(c *sbx.Config) { c.Now, c.TimeScale = clock, 2*time.Second })
	r := buyReq(NewIdempotencyKey(), displayPkg)
	r.Start, r.End = time.Date(2028, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 6, 10, 23, 59, 59, 0, time.UTC)
	mb, err := e.client.CreateMediaBuy(ctx(t), e.seller, r)
	if err != nil {
		t.Fatal(err)
	}
	pkgID := mb.Packages[0].PackageID
	spend := func() events.Micros {
		t.Helper()
		d, err := e.client.GetMediaBuyDelivery(ctx(t), e.seller, mb.MediaBuyID)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := d.MediaBuy(mb.MediaBuyID)
		p, _ := m.Package(pkgID)
		return p.SpendMicros
	}
	update := func(key string, u MediaBuyUpdate) *MediaBuy {
		t.Helper()
		u.IdempotencyKey, u.Account, u.MediaBuyID = key, AccountRef{AccountID: "acc_1"}, mb.MediaBuyID
		res, err := e.client.UpdateMediaBuy(ctx(t), e.seller, u)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	advance(5 * time.Second) // a quarter of the flight
	key := IdempotencyKey("campaign-1", "line-1", "change-1")
	res := update(key, MediaBuyUpdate{Revision: 1, Packages: []PackageUpdate{{PackageID: pkgID, BudgetMicros: micro(2_000_000_000)}}})
	if !res.Booked() || res.Revision != 2 || res.TotalBudgetMicros != 2_000_000_000 || len(res.Packages) != 1 ||
		res.Packages[0].BudgetMicros != 2_000_000_000 || res.Replayed {
		t.Fatalf("budget raised: %+v", res)
	}
	again := update(key, MediaBuyUpdate{Revision: 1, Packages: []PackageUpdate{{PackageID: pkgID, BudgetMicros: micro(2_000_000_000)}}})
	if !again.Replayed || again.Revision != 2 {
		t.Fatalf("the same key replays, not a second change: %+v", again)
	}
	// A stale revision is a conflict.
	_, err = e.client.UpdateMediaBuy(ctx(t), e.seller, MediaBuyUpdate{IdempotencyKey: NewIdempotencyKey(), Account: AccountRef{AccountID: "acc_1"},
		MediaBuyID: mb.MediaBuyID, Revision: 1, Paused: flag(true)})
	if !errors.Is(err, sellerclient.ErrConflict) && !strings.Contains(fmtErr(err), "CONFLICT") {
		t.Fatalf("stale revision: %v", err)
	}

	res = update(NewIdempotencyKey(), MediaBuyUpdate{Packages: []PackageUpdate{{PackageID: pkgID, Paused: flag(true)}}})
	if !res.Packages[0].Paused || res.MediaBuyStatus != "paused" || res.Revision != 3 {
		t.Fatalf("paused: %+v", res)
	}
	atPause := spend()
	advance(4 * time.Second)
	if got := spend(); got != atPause {
		t.Fatalf("a paused package spent on: %d then %d", atPause, got)
	}
	res = update(NewIdempotencyKey(), MediaBuyUpdate{Packages: []PackageUpdate{{PackageID: pkgID, Paused: flag(false)}}})
	if res.Packages[0].Paused || res.MediaBuyStatus == "paused" {
		t.Fatalf("resumed: %+v", res)
	}
	advance(2 * time.Second)
	if got := spend(); got <= atPause {
		t.Fatalf("a resumed package spends again: %d then %d", atPause, got)
	}
	// A budget below what was spent is refused.
	_, err = e.client.UpdateMediaBuy(ctx(t), e.seller, MediaBuyUpdate{IdempotencyKey: NewIdempotencyKey(), Account: AccountRef{AccountID: "acc_1"},
		MediaBuyID: mb.MediaBuyID, Packages: []PackageUpdate{{PackageID: pkgID, BudgetMicros: micro(1_000_000)}}})
	if !strings.Contains(fmtErr(err), "BUDGET_TOO_LOW") {
		t.Fatalf("budget below spend: %v", err)
	}
	res = update(NewIdempotencyKey(), MediaBuyUpdate{Packages: []PackageUpdate{{PackageID: pkgID, Canceled: true, CancellationReason: "the buyer cancelled the line"}}})
	if !res.Packages[0].Canceled || res.MediaBuyStatus != "canceled" {
		t.Fatalf("canceled: %+v", res)
	}
	atCancel := spend()
	advance(time.Minute)
	if got := spend(); got != atCancel {
		t.Fatalf("a canceled package spent on: %d then %d", atCancel, got)
	}
	if atCancel >= 2_000_000_000 || atCancel <= 0 {
		t.Fatalf("spend at cancel %d", atCancel)
	}
	_, err = e.client.UpdateMediaBuy(ctx(t), e.seller, MediaBuyUpdate{IdempotencyKey: NewIdempotencyKey(), Account: AccountRef{AccountID: "acc_1"},
		MediaBuyID: mb.MediaBuyID, Packages: []PackageUpdate{{PackageID: pkgID, Paused: flag(false)}}})
	if !strings.Contains(fmtErr(err), "INVALID_STATE") || !Answered(err) {
		t.Fatalf("a canceled buy changes no more: %v", err)
	}
	// Refused before sending.
	n := len(e.agent.Calls())
	for _, u := range []MediaBuyUpdate{{IdempotencyKey: "short", Account: AccountRef{AccountID: "a"}, MediaBuyID: "m", Paused: flag(true)},
		{IdempotencyKey: NewIdempotencyKey(), Account: AccountRef{AccountID: "a"}, MediaBuyID: "m"},
		{IdempotencyKey: NewIdempotencyKey(), MediaBuyID: "m", Paused: flag(true)}} {
		if _, err := e.client.UpdateMediaBuy(ctx(t), e.seller, u); !errors.Is(err, sellerclient.ErrValidation) {
			t.Fatalf("%+v: %v", u, err)
		}
	}
	if len(e.agent.Calls()) != n {
		t.Fatal("an invalid update was sent")
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestUpdateSubmittedThenCompleted: a budget increase on a product that
// needs the seller's approval answers submitted; the task's result is the
// update.
func TestUpdateSubmittedThenCompleted(t *testing.T) {
	e := newEnv(t, nil)
	mb, err := e.client.CreateMediaBuy(ctx(t), e.seller, buyReq(NewIdempotencyKey(),
		PackageRequest{ProductID: "ctv_prime_guaranteed", PricingOptionID: "ctv_prime_fixed_usd", BudgetMicros: 6_000_000_000}))
	if err != nil {
		t.Fatal(err)
	}
	var booked *MediaBuy
	checkfor.Until(t, 5*time.Second, "the CTV buy's approval", func() bool {
		ts, err := e.client.GetTaskStatus(ctx(t), e.seller, mb.TaskID)
		if err == nil && ts.MediaBuy.Booked() {
			booked = ts.MediaBuy
			return true
		}
		return false
	})
	res, err := e.client.UpdateMediaBuy(ctx(t), e.seller, MediaBuyUpdate{IdempotencyKey: NewIdempotencyKey(), Account: AccountRef{AccountID: "acc_1"},
		MediaBuyID: booked.MediaBuyID, Packages: []PackageUpdate{{PackageID: booked.Packages[0].PackageID, BudgetMicros: micro(7_500_000_000)}}})
	if err != nil || res.Booked() || res.Status != "submitted" || res.TaskID == "" {
		t.Fatalf("increase on a manual product: %+v %v", res, err)
	}
	checkfor.Until(t, 5*time.Second, "the update task to complete with the new budget", func() bool {
		ts, err := e.client.GetTaskStatus(ctx(t), e.seller, res.TaskID)
		return err == nil && ts.Status == "completed" && ts.TaskType == OpUpdateMediaBuy && ts.MediaBuy.Booked() &&
			ts.MediaBuy.Revision == booked.Revision+1 && math.Abs(float64(ts.MediaBuy.Packages[0].BudgetMicros-7_500_000_000)) < 1
	})
}
