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
	err := a.pub.FollowFrom(ctx, id, after, func(seq uint64, e events.Event) bool {
		b, err := json.Marshal(e)
		if err != nil {
			return true
		}
		if !write(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", seq, e.Type(), b)) {
			return false
		}
		return e.Type() != events.KindCampaignCompleted.Type
	})
	if err != nil && ctx.Err() == nil {
		// Closing the stream makes the client reconnect with Last-Event-ID.
		a.log.Warn().Err(err).Str("campaign_id", id).Msg("event stream failed; closing it")
	}
}
