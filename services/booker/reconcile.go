package booker

import (
	"context"
	"errors"
	"fmt"

	"github.com/dealflow/dealflow/internal/adcpauth"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// reconcileLine asks the seller what became of an unresolved line, without
// ever booking it: the deal when the seller shows one, a non-empty none
// (why the seller shows nothing) when it confirms it booked nothing, or
// neither while it cannot tell (err says why).
//
//   - IAB: the quote the line was booked on. Booked → the deal is read.
//     Available, unknown to the seller → nothing was booked. Expired →
//     the booking request is replayed with the same idempotency key and
//     body: the seller answers a booking it made with that key, and
//     quote_expired when there is none (an expired quote cannot be booked).
//   - AdCP: a submitted buy's task (completed or finally refused), or else
//     the account's media buys, matched by the context the line's
//     create_media_buy carried.
func (b *Booker) reconcileLine(ctx context.Context, _ *bus.Store[Ledger], c *campaign.Campaign, l events.PlanLine, line *LedgerLine) (*events.DealBooked, string, error) {
	q, ok := c.Quotes[campaign.QuoteKey(l.SellerURL, l.PackageID)]
	if !ok {
		return nil, "", fmt.Errorf("booker: the line's quote is not stored")
	}
	cctx, cancel := context.WithTimeout(ctx, b.callTimeout())
	defer cancel()
	if l.Protocol.IsADCP() || q.Seller.Protocol.IsADCP() {
		return b.reconcileADCP(cctx, c, q, l, line)
	}
	quoteID := l.QuoteID
	if line.RequoteID != "" {
		quoteID = line.RequoteID
	}
	qt, err := b.Client.GetQuote(cctx, l.SellerURL, quoteID)
	switch {
	case err == nil && qt.Status == sellerclient.QuoteBooked && qt.DealID != "":
		d, err := b.Client.GetDeal(cctx, l.SellerURL, qt.DealID)
		if err != nil {
			return nil, "", err
		}
		return dealBooked(c, q, l, quoteID, d), "", nil
	case err == nil:
		return nil, fmt.Sprintf("the seller shows quote %s %s, with no deal", quoteID, qt.Status), nil
	case errors.Is(err, sellerclient.ErrNotFound):
		return nil, fmt.Sprintf("the seller does not know quote %s", quoteID), nil
	case !errors.Is(err, sellerclient.ErrQuoteExpired):
		return nil, "", err
	}
	auth, err := sellerclient.AuthFor(b.Credentials, l.SellerURL, q.Tier)
	if err != nil {
		return nil, "", err
	}
	res, err := b.Client.BookDeal(cctx, l.SellerURL, auth, dealRequest(c, line, quoteID))
	switch {
	case err == nil:
		return dealBooked(c, q, l, quoteID, res), "", nil
	case errors.Is(err, sellerclient.ErrQuoteExpired):
		return nil, fmt.Sprintf("quote %s expired and the seller holds no booking under the line's idempotency key", quoteID), nil
	}
	return nil, "", err
}

// reconcileADCP is reconcileLine for an AdCP seller.
func (b *Booker) reconcileADCP(ctx context.Context, c *campaign.Campaign, q events.QuoteReady, l events.PlanLine, line *LedgerLine) (*events.DealBooked, string, error) {
	if b.ADCP == nil {
		return nil, "", errors.New("booker: this booker has no AdCP client")
	}
	seller, err := adcpauth.Seller(b.Credentials, q.Seller, q.Tier)
	if err != nil {
		return nil, "", err
	}
	if line.TaskID != "" {
		ts, err := b.ADCP.GetTaskStatus(ctx, seller, line.TaskID)
		switch {
		case err != nil:
			return nil, "", err
		case ts.Status == "completed" && ts.MediaBuy.Booked():
			return adcpDealBooked(c, q, l, ts.MediaBuy), "", nil
		case ts.Final() && ts.Status != "completed":
			return nil, fmt.Sprintf("the seller %s the submitted media buy (task %s)", ts.Status, line.TaskID), nil
		}
		return nil, "", fmt.Errorf("booker: task %s is %s", line.TaskID, ts.Status)
	}
	buys, err := b.ADCP.ListMediaBuys(ctx, seller)
	if err != nil {
		return nil, "", err
	}
	ref := buyContext(c, line)[contextLine]
	echoes := false
	for i := range buys {
		if buys[i].Context[contextLine] == ref {
			return adcpDealBooked(c, q, l, &buys[i]), "", nil
		}
		echoes = echoes || buys[i].Context[contextLine] != ""
	}
	if len(buys) == 0 || echoes {
		return nil, fmt.Sprintf("the seller lists no media buy of this line (context %s=%s) among the account's %d", contextLine, ref, len(buys)), nil
	}
	// The seller does not echo the context it was sent (AdCP 3.0 sellers,
	// the SDK's among them): only the idempotent replay of the line's own
	// create_media_buy can tell. It answers the buy the seller made under
	// that key, or makes it now, within the reservation the line still
	// holds; a refusal means there was none.
	req, err := mediaBuyRequest(c, q, l, line)
	if err != nil {
		return nil, "", err
	}
	req.Account, req.Brand = derefAccount(seller.Account), derefBrand(seller.Brand)
	res, err := b.ADCP.CreateMediaBuy(ctx, seller, req)
	switch {
	case err == nil && res.Booked():
		return adcpDealBooked(c, q, l, res), "", nil
	case err == nil:
		return nil, "", fmt.Errorf("booker: the replayed buy is %s (task %s)", res.Status, res.TaskID)
	case adcp.Answered(err) && !isCode(err, "IDEMPOTENCY_EXPIRED"):
		return nil, "the seller refused the line's replayed create_media_buy: " + err.Error(), nil
	}
	return nil, "", err
}

func derefAccount(a *adcp.AccountRef) adcp.AccountRef {
	if a == nil {
		return adcp.AccountRef{}
	}
	return *a
}

func derefBrand(b *adcp.BrandRef) adcp.BrandRef {
	if b == nil {
		return adcp.BrandRef{}
	}
	return *b
}

// isCode reports whether err is the seller's AdCP error code.
func isCode(err error, code string) bool {
	var e *adcp.Error
	return errors.As(err, &e) && e.Code == code
}
