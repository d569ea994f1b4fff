package bus

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/pkg/events"
)

// WithAfterPublish installs the crash-simulation hook for tests.
func WithAfterPublish(c StageConfig, f func(in events.Event) bool) StageConfig {
	c.afterPublish = f
	return c
}

// ResolveDeadLetter runs the dead-letter resolution for tests.
func (b *Bus) ResolveDeadLetter(ctx context.Context, stage string, h nats.Header, data []byte, reason string) error {
	return b.resolveDeadLetter(ctx, stage, h, data, reason, nil)
}

// PublishAll runs the runner's publication of a handler's outputs.
func (b *Bus) PublishAll(ctx context.Context, outs []events.Event) error {
	return b.publishAll(ctx, outs)
}

// ForgetUsage makes the next Admit read the stores' usage afresh instead of
// a reading up to usageEvery old, so a test need not sleep past it. It waits
// for a reading in progress, which may predate what the test just did.
func (b *Bus) ForgetUsage() {
	b.capacity.refresh.Lock()
	defer b.capacity.refresh.Unlock()
	b.capacity.last.Store(nil)
}
