package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Store is a typed view of one KV bucket: JSON values of T under string
// keys, with revision-checked updates. Stages hold Stores, never KV handles,
// so only this package knows the state lives in JetStream. Every error it
// returns for a failure of the store itself wraps ErrStore; a caller's own
// error from an Update function is returned unchanged.
type Store[T any] struct {
	kv jetstream.KeyValue
	rs readers
}

// NewStore wraps a KV bucket.
func NewStore[T any](kv jetstream.KeyValue) *Store[T] {
	return &Store[T]{kv: kv, rs: readers{fast: directReader(kv)}}
}

// StoreOption adjusts a Store opened with OpenStore.
type StoreOption func(b *Bus, bucket string, s *storeOptions)

type storeOptions struct{ leader bool }

// WithLeaderReads makes the store read what was written before: Get is
// answered by the bucket's stream leader, which has applied every write
// it acknowledged, and an Update whose function decides without writing
// has that decision confirmed by the leader (see updateEncoded). It is
// for stores whose readers decide on what they read (the campaign
// records). Default reads are direct gets answered by the nearest
// replica, which on a cluster may not have applied the latest write yet;
// a leader read costs about twice as much (BenchmarkKVGet). A bucket with
// one replica has nothing to lag behind: its store reads directly.
func WithLeaderReads() StoreOption {
	return func(_ *Bus, _ string, o *storeOptions) { o.leader = true }
}

// OpenStore opens bucket (created by Provision) as a Store of T.
func OpenStore[T any](ctx context.Context, b *Bus, bucket string, opts ...StoreOption) (*Store[T], error) {
	kv, err := b.KV(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrStore, bucket, err)
	}
	var o storeOptions
	for _, f := range opts {
		f(b, bucket, &o)
	}
	s := NewStore[T](kv)
	if o.leader {
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: status of %s: %w", ErrStore, bucket, err)
		}
		if kst, ok := st.(*jetstream.KeyValueBucketStatus); !ok || kst.StreamInfo().Config.Replicas > 1 {
			s.rs.latest = leaderReader(b.NC, bucket)
		}
	}
	return s, nil
}

// StoreAs is a view of the same bucket, reads and options as s with the
// values decoded as U: for a reader that needs only some fields of large
// values (U is then a struct of those fields).
func StoreAs[U, T any](s *Store[T]) *Store[U] { return &Store[U]{kv: s.kv, rs: s.rs} }

// Get reads key; found is false when it does not exist.
func (s *Store[T]) Get(ctx context.Context, key string) (v T, found bool, err error) {
	v, _, found, err = s.GetRev(ctx, key)
	return v, found, err
}

// GetRev is Get that also returns the value's revision.
func (s *Store[T]) GetRev(ctx context.Context, key string) (v T, rev uint64, found bool, err error) {
	read := s.rs.fast
	if s.rs.latest != nil {
		read = s.rs.latest
	}
	e, found, err := read(ctx, key)
	if err != nil || !found {
		return v, 0, false, err
	}
	if err := json.Unmarshal(e.value, &v); err != nil {
		return v, 0, false, fmt.Errorf("%w: %s holds bad JSON: %w", ErrStore, key, err)
	}
	return v, e.rev, true, nil
}

// Put writes v at key unconditionally (last writer wins): for values whose
// key fully determines them, such as one package's quote.
func (s *Store[T]) Put(ctx context.Context, key string, v T) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: encode %s: %w", ErrStore, key, err)
	}
	pctx, cancel := opContext(ctx)
	defer cancel()
	if _, err := s.kv.Put(pctx, key, b); err != nil {
		return fmt.Errorf("%w: put %s: %w", ErrStore, key, err)
	}
	return nil
}

// Update applies fn with optimistic concurrency; see the package function
// Update. fn may run several times (once per conflicting writer), so it must
// derive everything it sets from v and its own arguments.
func (s *Store[T]) Update(ctx context.Context, key string, fn func(v *T, exists bool) (bool, error)) (T, error) {
	return s.UpdateEncoded(ctx, key, func(v *T, exists bool, _ []byte) ([]byte, error) {
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

// UpdateEncoded applies fn with optimistic concurrency; see the package
// function UpdateEncoded.
func (s *Store[T]) UpdateEncoded(ctx context.Context, key string, fn func(v *T, exists bool, stored []byte) ([]byte, error)) (T, error) {
	v, _, err := updateEncoded(ctx, s.kv, s.rs, key, fn)
	return v, err
}

// UpdateEncodedRev is UpdateEncoded that also returns the revision of the
// value returned: the one written, or the one read when fn wrote nothing.
func (s *Store[T]) UpdateEncodedRev(ctx context.Context, key string, fn func(v *T, exists bool, stored []byte) ([]byte, error)) (T, uint64, error) {
	return updateEncoded(ctx, s.kv, s.rs, key, fn)
}

// Keys lists the keys matching the NATS wildcard filter ("" for all).
func (s *Store[T]) Keys(ctx context.Context, filter string) ([]string, error) {
	var (
		l   jetstream.KeyLister
		err error
	)
	if filter == "" {
		l, err = s.kv.ListKeys(ctx)
	} else {
		l, err = s.kv.ListKeysFiltered(ctx, filter)
	}
	if err != nil {
		if IsNotFound(err) || errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: list keys: %w", ErrStore, err)
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}

// Values reads every value whose key matches filter; keys that vanish or
// hold bad JSON in between are skipped.
func (s *Store[T]) Values(ctx context.Context, filter string) (map[string]T, error) {
	keys, err := s.Keys(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(keys))
	for _, k := range keys {
		v, found, err := s.Get(ctx, k)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		if found {
			out[k] = v
		}
	}
	return out, nil
}

// Change is one update seen by Watch: the key, its new value, or Deleted.
type Change[T any] struct {
	Key     string
	Value   T
	Rev     uint64
	Deleted bool
	// Bad is set when the stored value is not valid JSON of T.
	Bad bool
}

// Watch calls fn for every current value, then for every change, until ctx
// ends. initialDone is called once the current values have been delivered.
func (s *Store[T]) Watch(ctx context.Context, fn func(Change[T]), initialDone func()) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("%w: watch: %w", ErrStore, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("%w: watch closed", ErrStore)
			}
			if e == nil {
				if initialDone != nil {
					initialDone()
				}
				continue
			}
			c := Change[T]{Key: e.Key(), Rev: e.Revision()}
			if e.Operation() != jetstream.KeyValuePut {
				c.Deleted = true
			} else if json.Unmarshal(e.Value(), &c.Value) != nil {
				c.Bad = true
			}
			fn(c)
		}
	}
}

// IsTransient reports whether err is a failure of the broker or the state
// store (unreachable, timed out, conflict storm) rather than of the caller's
// logic: work that failed so should be retried.
func IsTransient(err error) bool {
	return errors.Is(err, ErrStore) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoHeartbeat)
}

// pollEvery is how often WaitFor re-reads a key.
const pollEvery = 50 * time.Millisecond

// WaitFor polls key until cond holds or ctx ends; for tests and CLI waits.
func (s *Store[T]) WaitFor(ctx context.Context, key string, cond func(v T, found bool) bool) (T, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		v, found, err := s.Get(ctx, key)
		if err == nil && cond(v, found) {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-t.C:
		}
	}
}
