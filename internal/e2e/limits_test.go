package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/api"
	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/pkg/events"
)

// largestBrief is a booking request as large as the API accepts: the
// sample campaign with every geo target it may list at its longest, in
// characters that take six bytes each when encoded (so the brief's
// shopping part, copied into every SellerFound and PackageFound, is as
// large as it can be), and the audience filling the rest, to within
// timeSlack bytes of events.MaxRequestBytes (the request's time, stamped
// when it is submitted, takes a few bytes more or less). Its geo still
// names "US", so the sandbox's packages fit. extra bytes more make it one
// too many.
func largestBrief(t *testing.T, id string, extra int) api.BookingRequest {
	t.Helper()
	s := demo.SampleCampaign(id, "adaptive")
	req := api.BookingRequest{CampaignID: id, Brief: api.BriefInputOf(s.Brief), AutoApprove: true, Buyer: s.Buyer}
	size := func() int {
		cr, err := req.ToCampaign(time.Now())
		if fe, ok := events.AsFieldError(err); err != nil && (!ok || !strings.Contains(fe.Reason, "bytes encoded")) {
			t.Fatalf("the largest brief breaks another limit: %v", err)
		}
		b, _ := json.Marshal(cr)
		return len(b)
	}
	req.Brief.Geo = []string{"US"}
	for i := 1; i < events.MaxGeo; i++ {
		req.Brief.Geo = append(req.Brief.Geo, fmt.Sprintf("%03d%s", i, strings.Repeat("<", events.MaxTokenLen-3)))
		if size() > events.MaxRequestBytes-4<<10 {
			req.Brief.Geo = req.Brief.Geo[:len(req.Brief.Geo)-1]
			break
		}
	}
	req.Brief.TargetAudience = map[string]any{"fill": ""}
	fill := events.MaxRequestBytes - timeSlack - size() + extra
	req.Brief.TargetAudience["fill"] = strings.Repeat("a", fill)
	if got := size(); extra == 0 && (got > events.MaxRequestBytes || got < events.MaxRequestBytes-2*timeSlack) {
		t.Fatalf("largest brief is %d bytes, want just under %d", got, events.MaxRequestBytes)
	}
	return req
}

// timeSlack is the room largestBrief leaves for the request's timestamp.
const timeSlack = 32

// TestLargestAcceptedBriefCompletes: the largest brief the API accepts
// goes through a whole campaign (discovery, every seller's media kit and
// negotiations, plan, booking) and completes, every event it makes within
// the event limit and none dead-lettered; a few bytes more are refused at
// the API, 422 naming the largest field. (A 45 KB brief used to leave its campaign in
// shopping, a 47 KB one dead-lettered its CampaignCompleted, and a 0.9 MB
// one was answered 503 and retried for ever.)
func TestLargestAcceptedBriefCompletes(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ctx := context.Background()
	a := startStack(t, func(c *config.Config) { c.HTTPAddr = "127.0.0.1:0" }).app
	base := "http://" + a.HTTPAddr

	over := largestBrief(t, "e2e-largest-plus-one", 2*timeSlack)
	if code, out := httpJSON(t, "POST", base+"/bookings", over, nil); code != 422 || out["field"] != "brief.geo" {
		t.Fatalf("one byte over: %d %v, want 422 naming brief.geo, its largest field", code, out)
	}
	req := largestBrief(t, "e2e-largest", 0)
	if code, out := httpJSON(t, "POST", base+"/bookings", req, nil); code != 200 {
		t.Fatalf("the largest brief: %d %v", code, out)
	}
	fctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	res := demo.Result{CampaignID: req.CampaignID}
	if err := a.Bus.Follow(fctx, req.CampaignID, func(e events.Event) bool { return demo.Observe(e, &res, nil, io.Discard) }); err != nil && res.Status == "" {
		t.Fatalf("the campaign did not finish: %v", err)
	}
	if res.Status != events.StatusCompleted || len(res.Deals) == 0 {
		t.Fatalf("status %q with %d deals, failed %v, skipped %v", res.Status, len(res.Deals), res.Failed, res.SkippedSellers)
	}
	// Every event of the campaign, as stored: the largest is within the
	// limit (the bus refuses larger ones, which would have stalled it).
	cons, err := a.Bus.JS.OrderedConsumer(ctx, bus.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.CampaignFilter(req.CampaignID)}})
	if err != nil {
		t.Fatal(err)
	}
	kinds, largest, largestKind, total, packageMax := map[string]int{}, 0, "", 0, 0
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		n := len(msg.Data())
		for k, vs := range msg.Headers() {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		kind := msg.Headers().Get("ce-type")
		kinds[kind]++
		total += n
		if kind == events.KindPackageFound.Type {
			packageMax = max(packageMax, n)
		}
		if n > largest {
			largest, largestKind = n, kind
		}
	}
	for _, k := range []events.Kind{events.KindCampaignRequested, events.KindSellerFound, events.KindPackageFound, events.KindQuoteReady,
		events.KindPortfolioProposed, events.KindDealBooked, events.KindCampaignCompleted} {
		if kinds[k.Type] == 0 {
			t.Fatalf("no %s among the campaign's events %v", k.Name, kinds)
		}
	}
	if largest > events.MaxEventBytes {
		t.Fatalf("a %s of %d bytes, over the %d limit", largestKind, largest, events.MaxEventBytes)
	}
	// The brief's lists travel once per seller (SellerFound), not once per
	// package: a PackageFound carries what the negotiator needs.
	if packageMax > 16<<10 {
		t.Fatalf("a PackageFound of %d bytes: the brief's lists copied into every package", packageMax)
	}
	t.Logf("largest event: %s, %d bytes (limit %d); largest PackageFound %d bytes; %d bytes in all; events by type %v",
		largestKind, largest, events.MaxEventBytes, packageMax, total, kinds)
	if n := dlqCount(t, a, req.CampaignID); n != 0 {
		t.Fatalf("%d of the campaign's events dead-lettered", n)
	}
	c, err := a.Campaigns.Get(ctx, req.CampaignID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != events.StatusCompleted {
		t.Fatalf("the record says %q", c.Status)
	}
}

// dlqCount counts the dead letters of one campaign, across every stage.
func dlqCount(t *testing.T, a *app.App, id string) int {
	t.Helper()
	cons, err := a.Bus.JS.OrderedConsumer(context.Background(), bus.StreamDLQ, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return n
		}
		if msg.Headers().Get("ce-subject") == id || strings.Contains(msg.Headers().Get(bus.HeaderDLQSubject), "."+id) {
			n++
		}
	}
}
