package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/api/apitest"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/pkg/events"
)

// TestLineChangesThroughTheAPI: a booked campaign's lines are shown with
// their state and budget; a line is cancelled at its seller through the
// API (202, then cancelled with its committed spend lowered), the errors
// name the field (unknown line 404, cancelled line 409, an IAB pause 422, a
// long reason 422), the whole campaign is cancelled, and the webhook gets
// the line changes.
func TestLineChangesThroughTheAPI(t *testing.T) {
	m := startMarket(t)
	a := startApp(t, m, t.TempDir(), nil)
	base := "http://" + a.HTTPAddr
	rcv := newReceiver(t, 200)
	if code, out := apitest.JSON(t, "POST", base+"/bookings", booking("lines-1", map[string]any{"url": rcv.srv.URL + "/hook", "secret": rcv.secret}), auth); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	job := func() map[string]any {
		t.Helper()
		code, out := apitest.JSON(t, "GET", base+"/bookings/lines-1", nil, auth)
		if code != 200 {
			t.Fatalf("get: %d %v", code, out)
		}
		return out
	}
	linesOf := func(j map[string]any) []map[string]any {
		var out []map[string]any
		ls, _ := j["lines"].([]any)
		for _, l := range ls {
			out = append(out, l.(map[string]any))
		}
		return out
	}
	var j map[string]any
	checkfor.Until(t, 60*time.Second, "the campaign to be booked", func() bool {
		j = job()
		return j["status"] == string(events.StatusCompleted) || j["status"] == string(events.StatusPartial)
	})
	lines := linesOf(j)
	if len(lines) < 2 {
		t.Fatalf("lines: %v", j["lines"])
	}
	committed := j["committed_micros"].(float64)
	for _, l := range lines {
		if l["state"] != "live" || l["budget_micros"].(float64) <= 0 {
			t.Fatalf("a booked line: %v", l)
		}
	}
	first := lines[0]
	key := first["line_key"].(string)
	lineURL := base + "/bookings/lines-1/lines/" + key

	if code, out := apitest.JSON(t, "POST", base+"/bookings/lines-1/lines/nope/cancel", nil, auth); code != 404 || out["field"] != "line_key" {
		t.Fatalf("unknown line: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", base+"/bookings/nope/lines/"+key+"/cancel", nil, auth); code != 404 {
		t.Fatalf("unknown job: %d %v", code, out)
	}
	if code, out := apitest.JSON(t, "POST", lineURL+"/cancel", map[string]any{"reason": strings.Repeat("x", 501)}, auth); code != 422 || out["field"] != "reason" {
		t.Fatalf("long reason: %d %v", code, out)
	}
	if first["protocol"] == string(events.ProtocolIAB) {
		if code, out := apitest.JSON(t, "POST", lineURL+"/pause", nil, auth); code != 422 || out["error"] != "unsupported" || out["field"] != "line_key" {
			t.Fatalf("IAB pause: %d %v", code, out)
		}
	}
	code, out := apitest.JSON(t, "POST", lineURL+"/cancel", map[string]any{"reason": "the client pulled the placement"}, auth)
	if code != 202 || out["status"] != "requested" || out["change_id"] == "" || out["line_key"] != key || out["action"] != "cancel" {
		t.Fatalf("cancel: %d %v", code, out)
	}
	checkfor.Until(t, 30*time.Second, "the line to be cancelled", func() bool {
		j = job()
		for _, l := range linesOf(j) {
			if l["line_key"] == key {
				return l["state"] == "cancelled"
			}
		}
		return false
	})
	if after := j["committed_micros"].(float64); after >= committed || after > j["budget_micros"].(float64) {
		t.Fatalf("committed %v after the cancel, %v before", after, committed)
	}
	if code, out := apitest.JSON(t, "POST", lineURL+"/cancel", nil, auth); code != 409 || out["field"] != "line_key" {
		t.Fatalf("cancel twice: %d %v", code, out)
	}

	code, out = apitest.JSON(t, "POST", base+"/bookings/lines-1/cancel", nil, auth)
	if changes, _ := out["changes"].([]any); code != 202 || len(changes) != len(lines)-1 {
		t.Fatalf("cancel the campaign: %d %v", code, out)
	}
	checkfor.Until(t, 30*time.Second, "every line to be cancelled", func() bool {
		for _, l := range linesOf(job()) {
			if l["state"] != "cancelled" {
				return false
			}
		}
		return true
	})
	if code, out := apitest.JSON(t, "POST", base+"/bookings/lines-1/cancel", nil, auth); code != 409 {
		t.Fatalf("cancel a cancelled campaign: %d %v", code, out)
	}
	checkfor.Until(t, 30*time.Second, "the webhook to get the line changes", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		n := map[string]int{}
		for _, typ := range rcv.types {
			n[typ]++
		}
		return n[events.KindLineChanged.Type] == len(lines) && n[events.KindDealCancelled.Type] >= len(lines)
	})
}
