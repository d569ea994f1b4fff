// TO BE REPLACED: this file is the console branch's implementation of
// GET /bookings/{id}/events, written to the contract the webapi branch is
// building (structured-mode CloudEvents in `data:`, the CloudEvents type in
// `event:`, the stream sequence in `id:`, replay from the start or after
// Last-Event-ID, close after com.dealflow.campaign.completed.v1). When that
// branch's endpoint lands, delete this file and keep its handler; the
// console (internal/app/web/app.js) depends only on the contract.

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// Follower replays and tails one campaign's events after a stream sequence
// (internal/bus.Bus.FollowFrom).
type Follower interface {
	FollowFrom(ctx context.Context, campaignID string, afterSeq uint64, fn func(seq uint64, e events.Event) bool) error
}

// sseKeepAlive is how often an idle stream sends a comment line, so proxies
// and browsers keep it open.
const sseKeepAlive = 15 * time.Second

// events streams a campaign's events as Server-Sent Events.
func (a *api) events(f Follower) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !validID(w, id) {
			return
		}
		if _, err := a.campaigns.Get(r.Context(), id); err != nil {
			a.storeError(w, err)
			return
		}
		var after uint64
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, apiError{Error: "bad_request", Field: "Last-Event-ID", Detail: "must be a stream sequence (an integer)"})
				return
			}
			after = n
		}
		rc := http.NewResponseController(w)
		// The server's ReadTimeout would otherwise cancel a long stream.
		_ = rc.SetReadDeadline(time.Time{})
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()

		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		type item struct {
			seq uint64
			e   events.Event
		}
		ch := make(chan item)
		done := make(chan error, 1)
		go func() {
			done <- f.FollowFrom(ctx, id, after, func(seq uint64, e events.Event) bool {
				select {
				case ch <- item{seq, e}:
					return e.Type() != events.KindCampaignCompleted.Type
				case <-ctx.Done():
					return false
				}
			})
		}()
		tick := time.NewTicker(sseKeepAlive)
		defer tick.Stop()
		for {
			select {
			case it := <-ch:
				b, err := json.Marshal(it.e)
				if err != nil {
					continue
				}
				if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", it.seq, it.e.Type(), b); err != nil {
					return
				}
				_ = rc.Flush()
				if it.e.Type() == events.KindCampaignCompleted.Type {
					return
				}
			case <-tick.C:
				if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
					return
				}
				_ = rc.Flush()
			case err := <-done:
				if err != nil && ctx.Err() == nil {
					a.log.Warn().Err(err).Str("campaign_id", id).Msg("event stream ended")
				}
				return
			}
		}
	}
}
