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
	v, _, err := updateEncoded(ctx, kv, readers{fast: directReader(kv)}, key, fn)
	return v, err
}

// readers are how a store reads: fast (a direct get, any replica) and,
// for a store opened WithLeaderReads on a replicated bucket, latest (the
// stream leader, which has applied every acknowledged write).
type readers struct {
	fast, latest reader
}

// updateEncoded is UpdateEncoded over rs, and also returns the revision of
// the value returned (0 when nothing was ever written). The first read is
// fast: a value from a replica behind the latest write only costs a lost
// write and another round, read from the leader. But a decision fn makes
// without writing (an error, or nothing to change) is only as fresh as the
// read, so with a latest reader it stands only once the leader confirms
// that revision; otherwise fn runs again on the leader's value.
func updateEncoded[T any](ctx context.Context, kv jetstream.KeyValue, rs readers, key string, fn func(v *T, exists bool, stored []byte) ([]byte, error)) (T, uint64, error) {
	read, confirmed := rs.fast, rs.latest == nil
	for attempt := 0; attempt < 64; attempt++ {
		var v T
		e, found, err := read(ctx, key)
		if err != nil {
			var zero T
			return zero, 0, err
		}
		if found {
			if err := json.Unmarshal(e.value, &v); err != nil {
				var zero T
				return zero, 0, fmt.Errorf("%w: %s holds bad JSON: %w", ErrStore, key, err)
			}
		}
		b, err := fn(&v, found, e.value)
		if err != nil || b == nil {
			if confirmed {
				return v, e.rev, err
			}
			le, lfound, lerr := rs.latest(ctx, key)
			if lerr != nil {
				var zero T
				return zero, 0, lerr
			}
			if lfound == found && le.rev == e.rev {
				return v, e.rev, err
			}
			read, confirmed = rs.latest, true // a stale read: decide again on the latest
			continue
		}
		wctx, cancel := opContext(ctx)
		var rev uint64
		if found {
			rev, err = kv.Update(wctx, key, b, e.rev)
		} else {
			rev, err = kv.Create(wctx, key, b)
		}
		cancel()
		if err == nil {
			return v, rev, nil
		}
		if !isRevisionConflict(err) {
			return v, 0, fmt.Errorf("%w: write %s: %w", ErrStore, key, err)
		}
		if ctx.Err() != nil {
			return v, 0, ctx.Err()
		}
		if rs.latest != nil {
			read, confirmed = rs.latest, true
		}
	}
	var zero T
	return zero, 0, fmt.Errorf("%w: %s", ErrConflict, key)
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
