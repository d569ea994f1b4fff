package bus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackRouter hands the stream's acknowledgements of asynchronously published
// messages to the handling that published them. A handling waits once for
// all its outputs; the client's per-message futures would cost two
// channels for every event published.
type ackRouter struct {
	mu    sync.Mutex
	waits map[*nats.Msg]*ackWait
	// sweeping is set while a goroutine fails the waits past their
	// deadline (sweep): there is one while any wait is registered.
	sweeping bool
	// wait bounds a handling's wait for its outputs' acknowledgements,
	// checked every sweepEvery (publishAckWait and sweepEvery unless a
	// test sets them).
	wait, sweepEvery time.Duration
}

// newAckRouter returns a router with the default bounds.
func newAckRouter() *ackRouter {
	return &ackRouter{waits: map[*nats.Msg]*ackWait{}, wait: publishAckWait, sweepEvery: sweepEvery}
}

// ackWait is one handling's outputs in flight.
type ackWait struct {
	left     int           // outputs not acknowledged yet
	n        int           // outputs published
	deadline time.Time     // when the wait fails with context.DeadlineExceeded
	err      error         // the first failure; set before done is closed
	done     chan struct{} // closed when every output is stored, or on a failure
}

// publishAckWait bounds a handling's wait for its outputs' acknowledgements:
// an acknowledgement lost with the connection must not hold the input for
// ever, so after as long as a synchronous publish would wait the handling
// fails (and is retried). sweepEvery is how often the bound is checked: a
// wait fails between publishAckWait and publishAckWait + sweepEvery after
// it began.
const (
	publishAckWait = 10 * time.Second
	sweepEvery     = time.Second
)

// expect registers msgs, about to be published, as one wait. It fails
// with context.DeadlineExceeded when not every acknowledgement has come
// within r.wait: one goroutine checks every wait's deadline (sweep)
// rather than a timer for each handling that publishes.
func (r *ackRouter) expect(msgs []*nats.Msg) *ackWait {
	w := &ackWait{left: len(msgs), n: len(msgs), deadline: time.Now().Add(r.wait), done: make(chan struct{})}
	r.mu.Lock()
	for _, m := range msgs {
		r.waits[m] = w
	}
	if !r.sweeping && len(msgs) > 0 {
		r.sweeping = true
		go r.sweep()
	}
	r.mu.Unlock()
	return w
}

// sweep fails the waits past their deadline, every r.sweepEvery, until no
// wait is left.
func (r *ackRouter) sweep() {
	for {
		time.Sleep(r.sweepEvery)
		now := time.Now()
		r.mu.Lock()
		for m, w := range r.waits {
			if now.Before(w.deadline) {
				continue
			}
			delete(r.waits, m)
			if w.err == nil {
				w.err = fmt.Errorf("bus: publish %d events: %w", w.n, context.DeadlineExceeded)
				close(w.done)
			}
		}
		if len(r.waits) == 0 {
			r.sweeping = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// forget drops msgs' registrations: the handling stopped waiting for them
// (a failure, a timeout). Their late acknowledgements are then ignored.
func (r *ackRouter) forget(msgs []*nats.Msg) {
	r.mu.Lock()
	for _, m := range msgs {
		delete(r.waits, m)
	}
	r.mu.Unlock()
}

// acked is the client's acknowledgement callback. It runs on the client's
// reply goroutine and must not block.
func (r *ackRouter) acked(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	r.resolve(m, checkAck(ack))
}

// failed is the client's callback for a publish that failed (an error
// reply, no responders after the retries, a lost connection).
func (r *ackRouter) failed(_ jetstream.JetStream, m *nats.Msg, err error) {
	r.resolve(m, err)
}

func (r *ackRouter) resolve(m *nats.Msg, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.waits[m]
	if !ok {
		return // not publishAll's, or no longer waited for
	}
	delete(r.waits, m)
	if w.err != nil {
		return // done already closed by an earlier failure
	}
	if err != nil {
		w.err = fmt.Errorf("bus: publish %s: %w", m.Header.Get(nats.MsgIdHdr), err)
		close(w.done)
		return
	}
	if w.left--; w.left == 0 {
		close(w.done)
	}
}
