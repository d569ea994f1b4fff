package bus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// entry is one value read from a bucket: its bytes and revision.
type entry struct {
	value []byte
	rev   uint64
}

// reader reads a key's latest value; found is false for a key never
// written or deleted.
type reader func(ctx context.Context, key string) (e entry, found bool, err error)

// directReader reads through the client's KV Get. A bucket allows direct
// gets (nats.go creates every bucket so), which any replica answers, the
// nearest first: on a cluster a follower that has not yet applied the
// latest write answers with the value before it.
func directReader(kv jetstream.KeyValue) reader {
	return func(ctx context.Context, key string) (entry, bool, error) {
		gctx, cancel := opContext(ctx)
		defer cancel()
		e, err := kv.Get(gctx, key)
		if err != nil {
			if IsNotFound(err) {
				return entry{}, false, nil
			}
			return entry{}, false, fmt.Errorf("%w: get %s: %w", ErrStore, key, err)
		}
		return entry{value: e.Value(), rev: e.Revision()}, true, nil
	}
}

// leaderReader reads through the stream's message-get API, which only the
// bucket stream's leader answers, and only after it applied every write it
// acknowledged: a read that follows a write (in any process) sees it.
// It is the read of a store opened WithLeaderReads.
func leaderReader(nc *nats.Conn, bucket string) reader {
	subj := jetstream.DefaultAPIPrefix + "STREAM.MSG.GET.KV_" + bucket
	pre := "$KV." + bucket + "."
	return func(ctx context.Context, key string) (entry, bool, error) {
		req, err := json.Marshal(msgGetRequest{LastFor: pre + key})
		if err != nil {
			return entry{}, false, fmt.Errorf("%w: get %s: %w", ErrStore, key, err)
		}
		gctx, cancel := opContext(ctx)
		defer cancel()
		m, err := nc.RequestWithContext(gctx, subj, req)
		if err != nil {
			return entry{}, false, fmt.Errorf("%w: get %s from the leader: %w", ErrStore, key, err)
		}
		var resp msgGetResponse
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return entry{}, false, fmt.Errorf("%w: get %s: unreadable answer: %w", ErrStore, key, err)
		}
		if resp.Error != nil {
			if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
				return entry{}, false, nil
			}
			return entry{}, false, fmt.Errorf("%w: get %s from the leader: %w", ErrStore, key, resp.Error)
		}
		if resp.Message == nil {
			return entry{}, false, fmt.Errorf("%w: get %s: empty answer", ErrStore, key)
		}
		if len(resp.Message.Header) > 0 {
			h, err := nats.DecodeHeadersMsg(resp.Message.Header)
			if err != nil {
				return entry{}, false, fmt.Errorf("%w: get %s: unreadable headers: %w", ErrStore, key, err)
			}
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				return entry{}, false, nil
			}
		}
		return entry{value: resp.Message.Data, rev: resp.Message.Sequence}, true, nil
	}
}

// msgGetRequest and msgGetResponse are the JetStream API's
// STREAM.MSG.GET request and answer (the fields read here).
type msgGetRequest struct {
	LastFor string `json:"last_by_subj"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs,omitempty"`
		Data     []byte `json:"data,omitempty"`
	} `json:"message,omitempty"`
}
