package booker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// quoteStoreKey is a quote's key in the campaign-quotes bucket.
func quoteStoreKey(campaignID, sellerURL, packageID string) string {
	h := sha256.Sum256([]byte(QuoteKey(sellerURL, packageID)))
	return campaignID + "." + hex.EncodeToString(h[:12])
}

// SaveQuote stores one QuoteReady of a campaign. It is a plain put: the
// same package's quote always lands on the same key.
func SaveQuote(ctx context.Context, kv jetstream.KeyValue, q events.QuoteReady) error {
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, quoteStoreKey(q.CampaignID, q.Seller.URL, q.Package.ID), b); err != nil {
		return fmt.Errorf("booker: store quote: %w", err)
	}
	return nil
}

// LoadQuotes fills c.Quotes with the stored quotes of the packages the
// projection counts (a quote stored after a plan is not loaded into it).
func LoadQuotes(ctx context.Context, kv jetstream.KeyValue, c *Campaign) error {
	c.Quotes = make(map[string]events.QuoteReady, len(c.QuoteKeys))
	if len(c.QuoteKeys) == 0 {
		return nil
	}
	lister, err := kv.ListKeysFiltered(ctx, c.ID+".*")
	if err != nil {
		if bus.IsNotFound(err) || err == jetstream.ErrNoKeysFound {
			return nil
		}
		return fmt.Errorf("booker: list quotes of %s: %w", c.ID, err)
	}
	for key := range lister.Keys() {
		var q events.QuoteReady
		if _, found, err := bus.GetJSON(ctx, kv, key, &q); err != nil {
			return err
		} else if !found {
			continue
		}
		if k := QuoteKey(q.Seller.URL, q.Package.ID); c.QuoteKeys[k] {
			c.Quotes[k] = q
		}
	}
	return nil
}
