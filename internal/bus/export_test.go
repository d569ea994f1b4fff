package bus

import "github.com/dealflow/dealflow/pkg/events"

// WithAfterPublish installs the crash-simulation hook for tests.
func WithAfterPublish(c StageConfig, f func(in events.Event) bool) StageConfig {
	c.afterPublish = f
	return c
}
