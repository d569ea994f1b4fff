package bus

import (
	"context"
	"errors"
	"fmt"
)

// ErrNoStream is returned by StreamStats when the event stream is missing.
var ErrNoStream = errors.New("bus: event stream not found")

// StreamStats returns the event stream's stored bytes and messages.
func (b *Bus) StreamStats(ctx context.Context) (bytes, msgs uint64, err error) {
	st, err := b.JS.Stream(ctx, StreamEvents)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrNoStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("bus: stream info: %w", err)
	}
	return info.State.Bytes, info.State.Msgs, nil
}

// Replicas is the replica count the bus provisions streams and buckets with.
func (b *Bus) Replicas() int { return b.cfg.Replicas }
