package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
)

// TestDeliveryFollowsTheFlight books the demo campaign on a market whose
// sellers deliver on an accelerated clock (one under-delivers) and checks:
//   - GET /bookings/{id}/events?follow=flight stays open after
//     CampaignCompleted and closes after every booked line's final
//     snapshot; resumed half way it sends exactly the rest and closes too,
//     resumed at its end it closes at once;
//   - GET /bookings/{id}/delivery then holds every booked line with each
//     of its snapshots once, in seq order, the last final, and the
//     deviations the stream carried, totals that add up, done set, and
//     matches the OpenAPI document;
//   - an unknown follow value is refused and an unknown campaign is 404.
func TestDeliveryFollowsTheFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("books a campaign and plays its flight: skipped under -short")
	}
	const day = 100 * time.Millisecond
	m, err := sandbox.Start(context.Background(), sandbox.DefaultMarket(), sandbox.WithTimeScale(day))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window = t.TempDir(), 0, m.RegistryURL, true, 45*time.Second
	cfg.HTTPAddr, cfg.APIKey = "127.0.0.1:0", apiKey
	cfg.TimeScale, cfg.PacingEvery = day, 24*time.Hour
	a, err := app.Start(context.Background(), cfg, natstest.Logger(), app.Options{Credentials: m.Credentials(), SweepEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	base := "http://" + a.HTTPAddr

	if code, out := apitest.JSON(t, "GET", base+"/bookings/nope/delivery", nil, auth); code != 404 || out["error"] != "not_found" {
		t.Fatalf("delivery of an unknown job: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings", booking("flight-1", nil), auth); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "GET", base+"/bookings/flight-1/events?follow=forever", nil, auth); code != 422 || out["field"] != "follow" {
		t.Fatalf("follow=forever: %d %v", code, out)
	}

	_, evs := readSSE(t, base+"/bookings/flight-1/events?follow=flight", "")
	booked := map[string]bool{}
	snaps := map[string][]int{}
	devs := map[string]int{}
	completedAt := -1
	for i, e := range evs {
		data, _ := json.Marshal(e.ce["data"])
		switch e.typ {
		case events.KindCampaignCompleted.Type:
			completedAt = i
		case events.KindDealBooked.Type:
			var p events.DealBooked
			_ = json.Unmarshal(data, &p)
			booked[p.LineKey] = true
		case events.KindDeliveryReported.Type:
			var p events.DeliveryReported
			_ = json.Unmarshal(data, &p)
			snaps[p.LineKey] = append(snaps[p.LineKey], p.Seq)
		case events.KindPacingDeviation.Type:
			var p events.PacingDeviation
			_ = json.Unmarshal(data, &p)
			devs[p.LineKey]++
		}
	}
	last := evs[len(evs)-1]
	if completedAt < 0 || completedAt == len(evs)-1 || len(booked) < 2 {
		t.Fatalf("the flight's stream: CampaignCompleted at %d of %d events, %d lines booked", completedAt, len(evs), len(booked))
	}
	if last.typ != events.KindDeliveryReported.Type && last.typ != events.KindPacingDeviation.Type {
		t.Fatalf("the flight's stream ended with %s, not a line's final snapshot", last.typ)
	}
	for k := range booked {
		if len(snaps[k]) < 3 {
			t.Fatalf("line %s: %d snapshots in the stream", k, len(snaps[k]))
		}
	}

	// Resumed half way through the flight: exactly the rest, then closed.
	cut := completedAt + (len(evs)-completedAt)/2
	_, rest := readSSE(t, base+"/bookings/flight-1/events?follow=flight", evs[cut].id)
	if len(rest) != len(evs)-cut-1 || rest[0].id != evs[cut+1].id || rest[len(rest)-1].id != last.id {
		t.Fatalf("resumed after %s: %d events, want %d", evs[cut].id, len(rest), len(evs)-cut-1)
	}

	// Resumed at its end: nothing more to send, so it closes at once.
	if _, none := readSSE(t, base+"/bookings/flight-1/events?follow=flight", last.id); len(none) != 0 {
		t.Fatalf("resumed after the last event: %d events", len(none))
	}

	req, _ := http.NewRequest("GET", base+"/bookings/flight-1/delivery", nil)
	req.Header.Set("X-API-Key", apiKey)
	code, _, body := apitest.Do(t, req)
	if code != 200 {
		t.Fatalf("delivery: %d %s", code, body)
	}
	var d api.Delivery
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if !d.Completed || !d.Done || len(d.Lines) != len(booked) || d.LastEventID != last.id {
		t.Fatalf("delivery: completed %v done %v, %d lines (booked %d), last event %s (stream %s)", d.Completed, d.Done, len(d.Lines), len(booked), d.LastEventID, last.id)
	}
	var spend events.Micros
	var underSeen bool
	for _, l := range d.Lines {
		if !booked[l.LineKey] || len(l.DealIDs) == 0 || l.SellerURL == "" || l.PlannedSpendMicros <= 0 {
			t.Fatalf("line %+v", l)
		}
		if len(l.Snapshots) != len(snaps[l.LineKey]) || len(l.Deviations) != devs[l.LineKey] {
			t.Fatalf("line %s: %d snapshots, %d deviations; the stream carried %d and %d", l.LineKey, len(l.Snapshots), len(l.Deviations), len(snaps[l.LineKey]), devs[l.LineKey])
		}
		for i, s := range l.Snapshots {
			if s.Seq != i || s.Final != (i == len(l.Snapshots)-1) {
				t.Fatalf("line %s: snapshot %d is seq %d final %v", l.LineKey, i, s.Seq, s.Final)
			}
		}
		fin := l.Snapshots[len(l.Snapshots)-1]
		if !l.Final || l.SpendMicros != fin.SpendMicros || l.Impressions != fin.Impressions || l.Status != string(fin.Status) {
			t.Fatalf("line %s: head %+v, final snapshot %+v", l.LineKey, l, fin)
		}
		for _, dv := range l.Deviations {
			underSeen = underSeen || dv.Direction == events.DeviationUnder
			if dv.Reason == "" {
				t.Fatalf("line %s: a deviation without a reason", l.LineKey)
			}
		}
		spend += l.SpendMicros
	}
	if spend != d.DeliveredSpendMicros || spend == 0 {
		t.Fatalf("delivered spend %d, lines add up to %d", d.DeliveredSpendMicros, spend)
	}
	if !underSeen {
		t.Fatal("the default market's under-delivering line shows no under deviation")
	}
}

// TestDeliveryStatusesInTheDocument: the document's pacing statuses are the
// contract's, so a status added to events.PacingStatuses cannot make a
// delivery answer fail its own document unnoticed.
func TestDeliveryStatusesInTheDocument(t *testing.T) {
	doc, _, err := apitest.Document()
	if err != nil {
		t.Fatal(err)
	}
	want := []any{}
	for _, s := range events.PacingStatuses {
		want = append(want, string(s))
	}
	snap := doc.Components.Schemas["DeliverySnapshot"].Value.Properties["status"].Value.Enum
	line := doc.Components.Schemas["DeliveryLine"].Value.Properties["status"].Value.Enum
	if fmt.Sprint(snap) != fmt.Sprint(want) || fmt.Sprint(line) != fmt.Sprint(append([]any{"scheduled"}, want...)) {
		t.Fatalf("document: snapshot statuses %v, line statuses %v; the contract's %v", snap, line, want)
	}
}
