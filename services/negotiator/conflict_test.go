package negotiator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/negotiation"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// TestJournalConflictIsRetriedAndReplayed: two replicas handle the same
// PackageFound; the winner journals and sends round 1, the loser's own
// round 1 then finds the journal changed under it. That must be a transient
// error (the handler fails, the runner redelivers), not an error outcome,
// and the retry must replay the winner's round without sending anything.
func TestJournalConflictIsRetriedAndReplayed(t *testing.T) {
	ctx := t.Context()
	env := natstest.Start(t)
	m, err := sandbox.Start(ctx, sandbox.MarketConfig{Sellers: []sandbox.SellerConfig{sandbox.DefaultMarket().Sellers[0]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	store, err := bus.OpenStore[Session](ctx, env.Bus, bus.BucketNegotiations)
	if err != nil {
		t.Fatal(err)
	}
	s := m.Sellers[0]
	u, _ := sellerclient.CanonicalURL(s.URL)
	client := sellerclient.New(sellerclient.Config{AllowPrivate: true, RetryBase: time.Millisecond})
	auth, err := sellerclient.AuthFor(m.Credentials(), u, identity.TierAgency)
	if err != nil {
		t.Fatal(err)
	}
	imps := int64(100_000)
	q, err := client.CreateQuote(ctx, u, auth, sellerclient.QuoteRequest{IdempotencyKey: "conflict-quote", ProductID: sandbox.ProductPreRollVideo,
		DealType: sellerclient.DealPD, Impressions: &imps})
	if err != nil {
		t.Fatal(err)
	}
	j := journal{store: store, key: SessionKey("conflict", u, "pkg-51a00003")}
	winner := &counterparty{j: j, client: client, url: u, auth: auth, quoteID: q.QuoteID}
	won, err := winner.Respond(ctx, negotiation.Move{Kind: negotiation.Offer, Price: 18, Reason: "winner"}, 1)
	if err != nil {
		t.Fatal(err)
	}

	// The loser decided its round 1 before the winner's was journaled.
	err = j.appendMessage(ctx, 0, Message{Key: "loser-key"})
	if !errors.Is(err, bus.ErrConflict) || !bus.IsTransient(err) || !strings.Contains(err.Error(), "changed under us") {
		t.Fatalf("conflict error %v: want a transient bus.ErrConflict", err)
	}
	// As the negotiation loop wraps it, it is still "retry later".
	if wrapped := fmt.Errorf("negotiation: counter 1 at 18.00: %w", err); !retryable(context.Background(), wrapped) {
		t.Fatalf("%v is not retryable", wrapped)
	}

	posts := func() int {
		n := 0
		for _, r := range s.Requests() {
			if strings.HasSuffix(r.Path, "/api/v1/negotiations/messages") {
				n++
			}
		}
		return n
	}
	before := posts()
	// The redelivered attempt replays the journal: whatever move it would
	// make, round 1 is the winner's, answered, and nothing is sent.
	retry := &counterparty{j: j, client: client, url: u, auth: auth, quoteID: q.QuoteID}
	got, err := retry.Respond(ctx, negotiation.Move{Kind: negotiation.Offer, Price: 17.5, Reason: "loser"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got != won {
		t.Fatalf("replayed round %+v, the winner's was %+v", got, won)
	}
	if n := posts() - before; n != 0 {
		t.Fatalf("the replay sent %d negotiation messages", n)
	}
	sess, _, err := store.Get(ctx, j.key)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Messages) != 1 || sess.Messages[0].Body.Rationale != "winner" {
		t.Fatalf("journal %+v: want only the winner's message", sess.Messages)
	}
}
