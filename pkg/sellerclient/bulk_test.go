package sellerclient

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestBulkDeals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := testClient()
	auth := Auth{APIKey: "ask_live_agency"}
	cases := []struct {
		name    string
		req     BulkDealRequest
		answer  string
		body    string
		wantErr error
		errText string
	}{
		{"cancel ok", BulkDealRequest{Operations: []BulkDealOperation{{Action: BulkCancel, DealID: "DEMO-1", Notes: "stop"}}},
			`{"total":1,"succeeded":1,"failed":0,"results":[{"index":0,"action":"cancel","success":true,"deal_id":"DEMO-1","error":null}]}`,
			`{"operations":[{"action":"cancel","deal_id":"DEMO-1","notes":"stop"}]}`, nil, ""},
		{"one refused", BulkDealRequest{Operations: []BulkDealOperation{{Action: BulkCancel, DealID: "DEMO-1"}, {Action: BulkCreate, QuoteID: "qt-2"}}},
			`{"total":2,"succeeded":1,"failed":1,"results":[{"index":0,"action":"cancel","success":true,"deal_id":"DEMO-1"},` +
				`{"index":1,"action":"create","success":false,"deal_id":null,"error":"Quote qt-2 not found"}]}`,
			`{"operations":[{"action":"cancel","deal_id":"DEMO-1"},{"action":"create","quote_id":"qt-2"}]}`, ErrOperationFailed, "Quote qt-2 not found"},
		{"missing result", BulkDealRequest{Operations: []BulkDealOperation{{Action: BulkCancel, DealID: "DEMO-1"}, {Action: BulkCancel, DealID: "DEMO-2"}}},
			`{"total":2,"succeeded":1,"failed":0,"results":[{"index":0,"action":"cancel","success":true,"deal_id":"DEMO-1"}]}`,
			`{"operations":[{"action":"cancel","deal_id":"DEMO-1"},{"action":"cancel","deal_id":"DEMO-2"}]}`, ErrBadResponse, "no result for operation 1"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			t.Parallel()
			srv := newFake(t, routes(map[string]reply{"POST /api/v1/deals/bulk": {body: cs.answer}}))
			res, err := c.BulkDeals(ctx, srv.URL, auth, cs.req)
			r := srv.last(t)
			if string(r.Body) != cs.body {
				t.Fatalf("body\n got %s\nwant %s", r.Body, cs.body)
			}
			if r.Header.Get("X-Api-Key") != "ask_live_agency" {
				t.Fatalf("no API key sent: %v", r.Header)
			}
			if cs.wantErr == nil {
				if err != nil || res.Succeeded != 1 || !res.Results[0].Success || res.Results[0].DealID != "DEMO-1" {
					t.Fatalf("res %+v err %v", res, err)
				}
				return
			}
			if !errors.Is(err, cs.wantErr) || !strings.Contains(err.Error(), cs.errText) {
				t.Fatalf("err %v, want %v with %q", err, cs.wantErr, cs.errText)
			}
			if res == nil {
				t.Fatal("the answer is returned with the error")
			}
		})
	}
}

func TestBulkDealsRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(nil))
	for _, req := range []BulkDealRequest{{}, {Operations: []BulkDealOperation{{Action: BulkCancel}}},
		{Operations: []BulkDealOperation{{Action: "pause", DealID: "D"}}}, {Operations: []BulkDealOperation{{Action: BulkCreate}}}} {
		_, err := testClient().BulkDeals(context.Background(), srv.URL, Auth{}, req)
		if !errors.Is(err, ErrValidation) || !IsNotSent(err) {
			t.Fatalf("%+v: err %v, want a validation error before sending", req, err)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestBulkDealsSellerError(t *testing.T) {
	t.Parallel()
	srv := newFake(t, routes(map[string]reply{"POST /api/v1/deals/bulk": {status: 401, body: `{"detail":{"error":"authentication_required","message":"API key required."}}`}}))
	_, err := testClient().BulkDeals(context.Background(), srv.URL, Auth{}, BulkDealRequest{Operations: []BulkDealOperation{{Action: BulkCancel, DealID: "D"}}})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err %v", err)
	}
}
