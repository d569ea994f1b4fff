package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxDeliverAdvisory is the server's io.nats.jetstream.advisory.v1.max_deliver.
type maxDeliverAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// RunJanitor moves events whose deliveries ran out without any ack (a
// handler that crashed or hung every time) to their stage's dead-letter
// subject. The server announces them only in MAX_DELIVERIES advisories, which
// StreamAdvisories captures so none is missed while no janitor runs. Every
// process may run one: they share a durable consumer, and dead letters are
// de-duplicated by stream sequence.
func (b *Bus) RunJanitor(ctx context.Context) error {
	cons, err := b.ensureConsumer(ctx, StreamAdvisories, jetstream.ConsumerConfig{
		Durable:    "dlq-janitor",
		AckPolicy:  jetstream.AckExplicitPolicy,
		AckWait:    30 * time.Second,
		MaxDeliver: 20,
	})
	if err != nil {
		return fmt.Errorf("bus: janitor consumer: %w", err)
	}
	events, err := b.JS.Stream(ctx, StreamEvents)
	if err != nil {
		return fmt.Errorf("bus: janitor: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var adv maxDeliverAdvisory
		if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.StreamSeq == 0 {
			_ = m.Term()
			return
		}
		raw, err := events.GetMsg(ctx, adv.StreamSeq)
		if err != nil {
			if IsNotFound(err) {
				_ = m.Ack() // aged out of the stream: nothing left to save
				return
			}
			_ = m.NakWithDelay(2 * time.Second)
			return
		}
		dm := nats.NewMsg(DLQPrefix + adv.Consumer)
		copyHeaders(dm.Header, raw.Header)
		reason := fmt.Sprintf("max deliveries (%d) exhausted without an ack (handler crashed or timed out)", adv.Deliveries)
		dm.Header.Set(HeaderDLQReason, reason)
		dm.Header.Set(HeaderDLQStage, adv.Consumer)
		dm.Header.Set(HeaderDLQSubject, raw.Subject)
		dm.Header.Set(HeaderDLQStreamSeq, strconv.FormatUint(adv.StreamSeq, 10))
		dm.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(adv.Deliveries, 10))
		dm.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq-%s-%d", adv.Consumer, adv.StreamSeq))
		dm.Data = raw.Data
		if _, err := b.JS.PublishMsg(ctx, dm); err != nil {
			_ = m.NakWithDelay(2 * time.Second)
			return
		}
		if err := b.resolveDeadLetter(ctx, adv.Consumer, raw.Header, raw.Data, reason, nil); err != nil {
			_ = m.NakWithDelay(2 * time.Second)
			return
		}
		b.Log.Error().Str("stage", adv.Consumer).Uint64("stream_seq", adv.StreamSeq).Msg("event dead-lettered after max deliveries")
		_ = m.Ack()
	})
	if err != nil {
		return fmt.Errorf("bus: janitor consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}
