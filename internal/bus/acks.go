package bus

import (
	"fmt"
	"sync"

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
}

// ackWait is one handling's outputs in flight.
type ackWait struct {
	left int           // outputs not acknowledged yet
	err  error         // the first failure; set before done is closed
	done chan struct{} // closed when every output is stored, or on a failure
}

// expect registers msgs, about to be published, as one wait.
func (r *ackRouter) expect(msgs []*nats.Msg) *ackWait {
	w := &ackWait{left: len(msgs), done: make(chan struct{})}
	r.mu.Lock()
	for _, m := range msgs {
		r.waits[m] = w
	}
	r.mu.Unlock()
	return w
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
