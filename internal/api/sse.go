package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// events streams a campaign's CloudEvents as Server-Sent Events: every event
// from the start of the stream (or after Last-Event-ID), then live ones,
// closing after CampaignCompleted. Each SSE message is
//
//	id: <the event's sequence number in the DEALFLOW stream>
//	event: <the CloudEvents type>
//	data: <the CloudEvent in the JSON event format (structured mode), one line>
//
// A client resumes with the Last-Event-ID header (EventSource sends it when
// it reconnects) or ?after=<sequence>: the stream restarts after that
// sequence, so nothing is repeated and nothing is missed. A comment line
// (": heartbeat") is sent every 15 seconds to keep proxies from closing an
// idle stream.
//
// With ?follow=flight the stream stays open after CampaignCompleted while
// the booked lines are followed: it closes, once it has sent every stored
// event, if the campaign completed, every line it booked has had its final
// DeliveryReported and no approved reallocation is still being applied (a
// campaign that booked nothing closes at CampaignCompleted as before). Resuming such a
// stream replays the campaign's earlier events to the server only, so it
// knows which lines are still followed, and sends only those after the
// resume point.
func (a *server) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	var after uint64
	for _, v := range []struct{ name, val string }{{"after", r.URL.Query().Get("after")}, {"Last-Event-ID", r.Header.Get("Last-Event-ID")}} {
		if v.val == "" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v.val), 10, 64)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "bad_request", Field: v.name, Detail: "must be an event id of this stream (a stream sequence number)"})
			return
		}
		after = n
	}
	follow := r.URL.Query().Get("follow")
	if follow != "" && follow != "flight" {
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "validation", Field: "follow", Detail: "must be flight (or absent: the stream closes after CampaignCompleted)"})
		return
	}
	if _, err := a.campaigns.Get(r.Context(), id); err != nil {
		a.storeError(w, err)
		return
	}
	// The server's ReadTimeout would cancel the request after 15s (its
	// background read times out); a stream must outlive it.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancel(r.Context())
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	// Nothing may write once the handler has returned.
	defer wg.Wait()
	defer cancel()
	write := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprint(w, s); err != nil {
			cancel()
			return false
		}
		if err := rc.Flush(); err != nil {
			cancel()
			return false
		}
		return true
	}
	if !write(": campaign " + id + "\nretry: 3000\n\n") {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(a.opts.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				write(": heartbeat\n\n")
			}
		}
	}()
	from := after
	var flight *flightEnd
	if follow == "flight" {
		flight, from = &flightEnd{lines: map[string]bool{}}, 0
	}
	err := a.pub.FollowFromPending(ctx, id, from, func(seq, pending uint64, e events.Event) bool {
		if flight != nil {
			flight.see(e)
		}
		if seq > after {
			b, err := json.Marshal(e)
			if err != nil {
				return true
			}
			if !write(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", seq, e.Type(), b)) {
				return false
			}
		}
		if flight != nil {
			// Judged only once caught up with the stored events: a
			// decision stored after the last final snapshot (a late
			// reallocation approval) is still to be sent.
			return pending > 0 || !flight.over()
		}
		return e.Type() != events.KindCampaignCompleted.Type
	})
	if err != nil && ctx.Err() == nil {
		// Closing the stream makes the client reconnect with Last-Event-ID.
		a.log.Warn().Err(err).Str("campaign_id", id).Msg("event stream failed; closing it")
	}
}

// flightEnd tells when a campaign's flight has nothing more to report: the
// campaign completed, every line it booked had its final snapshot, and no
// approved reallocation is still being applied (its Applied or Failed is
// to come). A proposal nobody decided does not hold the stream open: the
// reallocator proposes nothing on a final snapshot, so none is to come.
type flightEnd struct {
	completed bool
	lines     map[string]bool // line key -> final snapshot seen
	applying  map[int]bool    // approved reallocation revisions not yet ended
}

func (f *flightEnd) see(e events.Event) {
	switch e.Type() {
	case events.KindCampaignCompleted.Type:
		f.completed = true
	case events.KindDealBooked.Type:
		if p, err := events.PayloadOf[events.DealBooked](e, events.KindDealBooked); err == nil {
			if k := campaign.DealLineKey(&p); !f.lines[k] {
				f.lines[k] = false
			}
		}
	case events.KindDeliveryReported.Type:
		if p, err := events.PayloadOf[events.DeliveryReported](e, events.KindDeliveryReported); err == nil && p.Final {
			f.lines[p.LineKey] = true
		}
	case events.KindReallocationApproved.Type:
		if p, err := events.PayloadOf[events.ReallocationApproved](e, events.KindReallocationApproved); err == nil {
			if f.applying == nil {
				f.applying = map[int]bool{}
			}
			f.applying[p.Revision] = true
		}
	case events.KindReallocationApplied.Type:
		if p, err := events.PayloadOf[events.ReallocationApplied](e, events.KindReallocationApplied); err == nil {
			delete(f.applying, p.Revision)
		}
	case events.KindReallocationFailed.Type:
		if p, err := events.PayloadOf[events.ReallocationFailed](e, events.KindReallocationFailed); err == nil {
			delete(f.applying, p.Revision)
		}
	}
}

func (f *flightEnd) over() bool {
	if !f.completed || len(f.applying) > 0 {
		return false
	}
	for _, final := range f.lines {
		if !final {
			return false
		}
	}
	return true
}
