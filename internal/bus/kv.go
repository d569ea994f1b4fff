package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStore marks a failure of the KV state store itself (unreachable,
// write refused, unreadable value): the caller's work is not done and
// should be retried, unlike a failure of the caller's own logic.
var ErrStore = errors.New("bus: kv store")

// ErrConflict is returned by Update when concurrent writers kept winning.
// It also matches ErrStore.
var ErrConflict = fmt.Errorf("%w: update conflict", ErrStore)

// GetJSON reads key into v and returns its revision; found is false when the
// key does not exist.
func GetJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (rev uint64, found bool, err error) {
	gctx, cancel := opContext(ctx)
	defer cancel()
	e, err := kv.Get(gctx, key)
	if err != nil {
		if IsNotFound(err) {
			return 0, false, nil
		}
		return 0, false, fmt.Errorf("%w: get %s: %w", ErrStore, key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, false, fmt.Errorf("%w: %s holds bad JSON: %w", ErrStore, key, err)
	}
	return e.Revision(), true, nil
}

// Update applies fn to the value at key with optimistic concurrency: it reads
// the value and its revision, lets fn change it, and writes only if nobody
// wrote in between, retrying otherwise. fn sees a zero T (and exists=false)
// for a missing key; it returns false to leave the value unchanged.
func Update[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(v *T, exists bool) (bool, error)) (T, error) {
	return UpdateEncoded(ctx, kv, key, func(v *T, exists bool, _ []byte) ([]byte, error) {
		changed, err := fn(v, exists)
		if err != nil || !changed {
			return nil, err
		}
		b, err := json.Marshal(*v)
		if err != nil {
			return nil, fmt.Errorf("%w: encode %s: %w", ErrStore, key, err)
		}
		return b, nil
	})
}

// UpdateEncoded is Update for a caller that encodes the new value itself
// (and can tell from the stored bytes whether anything changed, without
// encoding the value it was given a second time): fn gets the decoded
// value and the bytes it was decoded from (nil when the key is missing)
// and returns the JSON to write, or nil to leave the value unchanged.
func UpdateEncoded[T any](ctx context.Context, kv jetstream.KeyValue, key string, fn func(v *T, exists bool, stored []byte) ([]byte, error)) (T, error) {
	for attempt := 0; attempt < 64; attempt++ {
		var v T
		var rev uint64
		var stored []byte
		gctx, gcancel := opContext(ctx)
		e, err := kv.Get(gctx, key)
		gcancel()
		found := err == nil
		switch {
		case found:
			stored, rev = e.Value(), e.Revision()
			if err := json.Unmarshal(stored, &v); err != nil {
				var zero T
				return zero, fmt.Errorf("%w: %s holds bad JSON: %w", ErrStore, key, err)
			}
		case !IsNotFound(err):
			var zero T
			return zero, fmt.Errorf("%w: get %s: %w", ErrStore, key, err)
		}
		b, err := fn(&v, found, stored)
		if err != nil || b == nil {
			return v, err
		}
		wctx, cancel := opContext(ctx)
		if found {
			_, err = kv.Update(wctx, key, b, rev)
		} else {
			_, err = kv.Create(wctx, key, b)
		}
		cancel()
		if err == nil {
			return v, nil
		}
		if !isRevisionConflict(err) {
			return v, fmt.Errorf("%w: write %s: %w", ErrStore, key, err)
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
	}
	var zero T
	return zero, fmt.Errorf("%w: %s", ErrConflict, key)
}

// isRevisionConflict reports a lost revision-checked write. A single
// server answers 10071 (ErrKeyExists); a replicated (R3) bucket answers
// 10164 (ErrKeyRevisionMismatch), which ErrKeyExists does not match.
func isRevisionConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return true
	}
	return false
}
