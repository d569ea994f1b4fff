package booker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dealflow/dealflow/internal/campaign"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// Ledger line states.
const (
	LineReserved = "reserved"
	LineBooked   = "booked"
	LineFailed   = "failed"
	// LineSubmitted is an AdCP buy the seller answered "submitted" (human
	// approval pending): the spend stays reserved and the line's next
	// attempt polls TaskID instead of creating the buy again.
	LineSubmitted = "submitted"
	// LineUnknown is a line whose outcome was still unknown at the booking
	// horizon: reported unresolved, its spend stays reserved, and it is only
	// reconciled from then on (the seller is asked what it did; it is never
	// booked again).
	LineUnknown = "unknown"
)

// Ledger is a campaign's booking ledger, one KV value per campaign so a
// single revision-checked write both reserves spend and proves the budget
// holds. Idempotency keys are written here before any seller call and reused
// on every retry, so a crash or redelivery can never book twice.
type Ledger struct {
	BudgetMicros events.Micros          `json:"budget_micros"`
	Lines        map[string]*LedgerLine `json:"lines"`
}

// LedgerLine is one approved deal's booking state.
type LedgerLine struct {
	Key         string        `json:"key"`
	QuoteID     string        `json:"quote_id"`
	SellerURL   string        `json:"seller_url"`
	PackageID   string        `json:"package_id"`
	State       string        `json:"state"`
	SpendMicros events.Micros `json:"spend_micros"`
	// RequoteKey and BookKey are the idempotency keys of the re-quote (when
	// the planned impressions differ from the quote's) and of the booking.
	RequoteKey string `json:"requote_key"`
	BookKey    string `json:"book_key"`
	// RequoteID is the fresh quote at the agreed CPM for the planned volume.
	RequoteID string `json:"requote_id,omitempty"`
	// Protocol is the seller's protocol; AdCP lines send
	// adcp.IdempotencyKey(campaign, key, book_key) with create_media_buy.
	Protocol events.Protocol `json:"protocol,omitempty"`
	// ProposalID is the AdCP proposal re-finalized at the agreed price
	// after the quote's proposal expired (bought instead of it, with a
	// fresh BookKey).
	ProposalID string `json:"proposal_id,omitempty"`
	// TaskID is the seller's task of a submitted AdCP buy.
	TaskID string `json:"task_id,omitempty"`
	// Sent is written before the line's first booking call (deal booking,
	// create_media_buy): from then on a call that provably never left (a
	// refused connection) no longer proves the seller booked nothing, since
	// an earlier one may have reached it; it is an unknown outcome, retried
	// with the same key and reconciled, and the reservation stays.
	Sent    bool                  `json:"sent,omitempty"`
	Deal    *events.DealBooked    `json:"deal,omitempty"`
	Failure *events.BookingFailed `json:"failure,omitempty"`
	// After the booking (changes.go): ChangeState is the line's state at
	// its seller ("" live, paused, cancelled); Added the deals a budget
	// change booked on top of Deal (IAB: an increase's difference, a
	// decrease's remainder); Changes every change asked for, by
	// change_id; PendingChange the one being applied; DeliveredMicros the
	// delivered spend read when it (or, for an IAB decrease, its deals)
	// was cancelled;
	// MediaBuyRevision the AdCP buy's revision after the last change.
	ChangeState      events.LineState       `json:"line_state,omitempty"`
	Added            []*events.DealBooked   `json:"added_deals,omitempty"`
	Changes          map[string]*LineChange `json:"changes,omitempty"`
	PendingChange    string                 `json:"pending_change,omitempty"`
	DeliveredMicros  events.Micros          `json:"delivered_micros,omitempty"`
	MediaBuyRevision int                    `json:"media_buy_revision,omitempty"`
	// ReservedAt is when the line was first taken up: the booking horizon
	// counts from it.
	ReservedAt time.Time `json:"reserved_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Committed is the spend reserved or booked: it never exceeds the budget.
func (l *Ledger) Committed() events.Micros {
	var s events.Micros
	for _, x := range l.Lines {
		if x.State == LineReserved || x.State == LineBooked || x.State == LineSubmitted || x.State == LineUnknown {
			s += x.SpendMicros
		}
	}
	return s
}

// errBudget means a reservation would break the budget.
var errBudget = errors.New("booking would exceed the campaign budget")

// reserve records the line with fresh idempotency keys, or returns the
// existing record (a redelivery). It refuses a reservation that would push
// committed spend over the budget.
func reserve(ctx context.Context, store *bus.Store[Ledger], campaignID string, budget events.Micros, l events.PlanLine, now time.Time) (*LedgerLine, error) {
	key := campaign.LineKey(l)
	var line *LedgerLine
	_, err := store.Update(ctx, campaignID, func(led *Ledger, exists bool) (bool, error) {
		if !exists {
			led.BudgetMicros = budget
			led.Lines = map[string]*LedgerLine{}
		}
		if x, ok := led.Lines[key]; ok {
			line = x
			return false, nil
		}
		spend := events.CostMicros(l.Impressions, l.CPMMicros)
		if led.Committed()+spend > led.BudgetMicros {
			return false, fmt.Errorf("%w: committed %d + %d micros > budget %d micros (%s)", errBudget,
				led.Committed(), spend, led.BudgetMicros, led.BudgetMicros)
		}
		now := now.UTC()
		line = &LedgerLine{Key: key, QuoteID: l.QuoteID, SellerURL: l.SellerURL, PackageID: l.PackageID, State: LineReserved, Protocol: l.Protocol.Or(),
			SpendMicros: spend, RequoteKey: events.NewID(), BookKey: events.NewID(), ReservedAt: now, UpdatedAt: now}
		led.Lines[key] = line
		return true, nil
	})
	return line, err
}

// markSent writes line.Sent before its first booking call and reports
// whether an earlier call may already have reached the seller.
func markSent(ctx context.Context, store *bus.Store[Ledger], campaignID string, line *LedgerLine) (before bool, err error) {
	if line.Sent {
		return true, nil
	}
	line.Sent = true
	return false, saveLine(ctx, store, campaignID, line)
}

// definite reports whether a failed booking call settles the line: the
// seller answered with a refusal, or the request never left and no earlier
// call can have reached the seller (sentBefore false).
func definite(err error, sentBefore bool) bool {
	return !unknownOutcome(err) && !(sentBefore && sellerclient.IsNotSent(err))
}

// saveLine writes the line's new state.
func saveLine(ctx context.Context, store *bus.Store[Ledger], campaignID string, line *LedgerLine) error {
	line.UpdatedAt = time.Now().UTC()
	_, err := store.Update(ctx, campaignID, func(led *Ledger, exists bool) (bool, error) {
		if !exists {
			return false, fmt.Errorf("booker: ledger of %s vanished", campaignID)
		}
		led.Lines[line.Key] = line
		return true, nil
	})
	return err
}

// Booker books approved lines with sellers.
type Booker struct {
	Client      *sellerclient.Client
	Credentials *identity.Credentials
	// ADCP books the lines of AdCP sellers (create_media_buy).
	ADCP *adcp.Client
	// PollWait bounds how long one attempt follows a submitted AdCP buy's
	// task before leaving it to the redelivery (default 10s).
	PollWait time.Duration
	// Delivered reads a booked deal's delivered spend to date (the
	// pacer's reading), when a cancelled line's committed spend drops to
	// it; nil keeps a cancelled line's booked spend committed.
	Delivered func(ctx context.Context, d events.DealBooked) (events.Micros, error)
	// CallTimeout bounds each seller call (default 30s).
	CallTimeout time.Duration
	Now         func() time.Time
}

// errOutcomeUnknown marks a booking attempt whose outcome is unknown: the
// request may have reached the seller (a timeout, a dropped or unreadable
// answer, a 5xx) and asking the seller did not settle it. The line is
// tried again with the same idempotency key until the booking horizon.
var errOutcomeUnknown = errors.New("booker: booking outcome unknown")

func unknown(err error) error { return fmt.Errorf("%w: %w", errOutcomeUnknown, err) }

// outcome is the result of booking one line: a deal, a definite failure,
// or neither (err: unknown, or the ledger could not be written).
type outcome struct {
	deal *events.DealBooked
	fail *events.BookingFailed
	// fresh is set when this call moved the ledger line to its final
	// state: the deal is counted once, by the call that booked it.
	fresh bool
}

// failure is the BookingFailed of line l of campaign c.
func failure(c *campaign.Campaign, l events.PlanLine, code, reason string) *events.BookingFailed {
	return &events.BookingFailed{CampaignID: c.ID, LineKey: campaign.LineKey(l), SellerURL: l.SellerURL, Protocol: l.Protocol.Or(), PackageID: l.PackageID,
		QuoteID: l.QuoteID, Code: code, Reason: events.ShortReason(reason), SpendMicros: l.SpendMicros}
}

// BookLine books one approved line exactly once: it reserves the line's
// spend in the ledger (or finds the line there on a redelivery) and, unless
// the line already has its outcome, makes one booking attempt. An error
// wrapping errOutcomeUnknown means the seller may have booked it: the
// caller retries later with the same keys (the ledger keeps them).
func (b *Booker) BookLine(ctx context.Context, led *bus.Store[Ledger], c *campaign.Campaign, l events.PlanLine) (outcome, *LedgerLine, error) {
	line, err := reserve(ctx, led, c.ID, c.Request.Brief.BudgetMicros, l, b.clock())
	if errors.Is(err, errBudget) {
		return outcome{fail: failure(c, l, "budget", err.Error())}, nil, nil
	}
	if err != nil {
		return outcome{}, nil, err
	}
	switch line.State {
	case LineBooked:
		return outcome{deal: line.Deal}, line, nil
	case LineFailed:
		return outcome{fail: line.Failure}, line, nil
	}
	o, err := b.attempt(ctx, led, c, l, line)
	return o, line, err
}

// attempt makes one booking attempt of a reserved line and writes a final
// outcome to the ledger before returning it.
func (b *Booker) attempt(ctx context.Context, led *bus.Store[Ledger], c *campaign.Campaign, l events.PlanLine, line *LedgerLine) (outcome, error) {
	fail := func(code, reason string) *events.BookingFailed { return failure(c, l, code, reason) }
	finish := func(d *events.DealBooked, f *events.BookingFailed) (*events.DealBooked, *events.BookingFailed, error) {
		if d == nil && ctx.Err() != nil {
			// This booker is stopping (or gave up on the handling): a call
			// it cut short says nothing about the seller, so the line is
			// left for the next delivery, never failed for it.
			return nil, nil, unknown(ctx.Err())
		}
		if d != nil {
			d.LineKey = line.Key
			line.State, line.Deal = LineBooked, d
			line.SpendMicros = d.SpendMicros
		} else {
			f.LineKey = line.Key
			line.State, line.Failure = LineFailed, f
			line.SpendMicros = 0
		}
		if err := saveLine(ctx, led, c.ID, line); err != nil {
			return nil, nil, err
		}
		return d, f, nil
	}
	d, f, err := b.book(ctx, led, c, l, line, fail, finish)
	if err != nil {
		return outcome{}, err
	}
	return outcome{deal: d, fail: f, fresh: true}, nil
}

// book is attempt's seller work for either protocol.
func (b *Booker) book(ctx context.Context, led *bus.Store[Ledger], c *campaign.Campaign, l events.PlanLine, line *LedgerLine,
	fail func(code, reason string) *events.BookingFailed, finish finishFunc) (*events.DealBooked, *events.BookingFailed, error) {
	q, ok := c.Quotes[campaign.QuoteKey(l.SellerURL, l.PackageID)]
	if !ok {
		return finish(nil, fail("unknown_quote", "approved line matches no quote of the campaign"))
	}
	if l.Protocol.IsADCP() || q.Seller.Protocol.IsADCP() {
		return b.bookADCP(ctx, led, c, q, l, line, finish)
	}
	auth, err := sellerclient.AuthFor(b.Credentials, l.SellerURL, q.Tier)
	if err != nil {
		return finish(nil, fail("credentials", err.Error()))
	}
	timeout := b.callTimeout()
	quoteID := l.QuoteID
	expired := q.QuoteExpiresAt != nil && !q.QuoteExpiresAt.After(b.clock())
	needRequote := l.Impressions != q.Impressions || expired
	for attempt := 0; attempt < 2; attempt++ {
		if needRequote {
			if line.RequoteID == "" {
				cctx, cancel := context.WithTimeout(ctx, timeout)
				rq, err := b.requote(cctx, auth, c, q, l, line.RequoteKey, "")
				cancel()
				if err != nil {
					if !errors.Is(err, errNoProduct) && unknownOutcome(err) {
						return nil, nil, unknown(err)
					}
					return finish(nil, fail(failCode(err), "re-quote for the planned volume failed: "+err.Error()))
				}
				if got := rq.Pricing.FinalCPM; got == nil || got.Micros() != l.CPMMicros {
					return finish(nil, fail("cpm_mismatch", fmt.Sprintf("re-quote priced %v, agreed %s; not booked", got, l.CPMMicros.Cents())))
				}
				line.RequoteID = rq.QuoteID
				if err := saveLine(ctx, led, c.ID, line); err != nil {
					return nil, nil, err
				}
			}
			quoteID = line.RequoteID
		}
		sentBefore, err := markSent(ctx, led, c.ID, line)
		if err != nil {
			return nil, nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := b.Client.BookDeal(cctx, l.SellerURL, auth, dealRequest(c, line, quoteID))
		cancel()
		if err == nil {
			return finish(dealBooked(c, q, l, quoteID, res), nil)
		}
		if (errors.Is(err, sellerclient.ErrQuoteExpired) || errors.Is(err, sellerclient.ErrAlreadyBooked)) && line.RequoteID == "" {
			// The quote expired, or someone else booked it (409
			// quote_already_booked): the agreement still holds, so
			// re-quote at the agreed CPM and book the new quote, under a
			// new key (the old one named the old quote).
			needRequote = true
			line.BookKey = events.NewID()
			if err := saveLine(ctx, led, c.ID, line); err != nil {
				return nil, nil, err
			}
			continue
		}
		if !definite(err, sentBefore) {
			// The request (or an earlier one) may have reached the seller.
			// If the quote now shows a deal, that booking is ours (one key
			// per line); else retry later with the same key.
			if d := b.reconcile(ctx, l.SellerURL, quoteID, timeout); d != nil {
				return finish(dealBooked(c, q, l, quoteID, d), nil)
			}
			return nil, nil, unknown(err)
		}
		return finish(nil, fail(failCode(err), err.Error()))
	}
	return finish(nil, fail("quote_expired", "the quote could not be booked (expired or booked by someone else) and its re-quote could not be booked either"))
}

// dealRequest is the line's deal booking: the same key and body on every
// attempt, so a retry (and the reconciler's replay) is the same request.
func dealRequest(c *campaign.Campaign, line *LedgerLine, quoteID string) sellerclient.DealBookingRequest {
	return sellerclient.DealBookingRequest{IdempotencyKey: line.BookKey, QuoteID: quoteID, Notes: "dealflow campaign " + c.ID}
}

func (b *Booker) callTimeout() time.Duration {
	if b.CallTimeout > 0 {
		return b.CallTimeout
	}
	return 30 * time.Second
}

// reconcile looks the quote up after an ambiguous booking failure and
// returns the deal if the seller booked it.
func (b *Booker) reconcile(ctx context.Context, sellerURL, quoteID string, timeout time.Duration) *sellerclient.DealBooking {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q, err := b.Client.GetQuote(cctx, sellerURL, quoteID)
	if err != nil || q.Status != sellerclient.QuoteBooked || q.DealID == "" {
		return nil
	}
	d, err := b.Client.GetDeal(cctx, sellerURL, q.DealID)
	if err != nil {
		return nil
	}
	return d
}

// errNoProduct fails a line whose quote names no product: a re-quote
// without one is refused by the seller and a guessed one books the wrong
// inventory.
var errNoProduct = errors.New("no_product: the quote names no product to re-quote")

// requote asks for a fresh quote on the line's product at its agreed CPM
// for its impressions, over the brief's flight — from start instead when
// given (a line added mid-flight is quoted for what is left of it).
func (b *Booker) requote(ctx context.Context, auth sellerclient.Auth, c *campaign.Campaign, q events.QuoteReady, l events.PlanLine, key, start string) (*sellerclient.Quote, error) {
	// Re-quote exactly the product the agreement was made on; never let the
	// seller reject (or worse, price) a request without one.
	product := q.Package.ProductID
	if product == "" {
		product = l.ProductID
	}
	if product == "" {
		return nil, errNoProduct
	}
	imps := l.Impressions
	target := sellerclient.FromMicros(l.CPMMicros)
	if start == "" {
		start = c.Request.Brief.StartDate
	}
	return b.Client.CreateQuote(ctx, l.SellerURL, auth, sellerclient.QuoteRequest{IdempotencyKey: key, ProductID: product,
		DealType: sellerclient.DealType(q.DealType), Impressions: &imps, FlightStart: start, FlightEnd: c.Request.Brief.EndDate,
		TargetCPM: &target})
}

// dealBooked builds the DealBooked event from the seller's answer, checking
// the booked CPM against the agreed one.
func dealBooked(c *campaign.Campaign, q events.QuoteReady, l events.PlanLine, quoteID string, res *sellerclient.DealBooking) *events.DealBooked {
	d := res.Deal
	cpm := l.CPMMicros
	if d.Pricing.FinalCPM != nil {
		cpm = d.Pricing.FinalCPM.Micros()
	}
	imps := l.Impressions
	if d.Terms.Impressions != nil && *d.Terms.Impressions > 0 {
		imps = *d.Terms.Impressions
	}
	spendMicros := events.CostMicros(imps, cpm) // the seller's booked amount
	out := &events.DealBooked{CampaignID: c.ID, SellerURL: l.SellerURL, SellerName: l.SellerName, Protocol: events.ProtocolIAB, PackageID: l.PackageID, ProductID: q.Package.ProductID,
		QuoteID: quoteID, DealID: d.DealID, DealType: string(d.DealType), CPMMicros: cpm, AgreedCPMMicros: l.CPMMicros,
		CPMMismatch: cpm != l.CPMMicros, Impressions: imps, SpendMicros: spendMicros,
		Currency: "USD", FlightStart: d.Terms.FlightStart, FlightEnd: d.Terms.FlightEnd, Tier: q.Tier,
		ActivationInstructions: d.ActivationInstructions, BookedAt: time.Now().UTC()}
	if out.DealType == "" {
		out.DealType = q.DealType
	}
	if o := d.OpenRTBParams; o != nil {
		out.BidFloorMicros = o.BidFloor.Micros()
		out.AuctionType = o.At
		out.OpenRTB = &events.OpenRTBDeal{ID: o.ID, BidFloorMicros: o.BidFloor.Micros(), Currency: "USD", AuctionType: o.At,
			WSeat: o.WSeat, WADomain: o.WADomain}
	}
	return out
}

// unknownOutcome reports whether a failed seller call leaves its outcome
// unknown: the request may have reached the seller and been acted on (a
// timeout, a connection lost after sending, a 5xx, an unreadable answer).
// A failure is definite only when the request provably never left (refused
// connection, DNS or TLS failure, refused before sending) or the seller
// answered it with an explicit refusal (a 4xx, an AdCP error code).
func unknownOutcome(err error) bool {
	if sellerclient.IsNotSent(err) || adcp.Answered(err) {
		return false
	}
	var se *sellerclient.Error
	if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
		return false
	}
	var ae *adcp.Error
	if errors.As(err, &ae) && ae.HTTPStatus >= 400 && ae.HTTPStatus < 500 {
		return false
	}
	return true
}

func failCode(err error) string {
	if sellerclient.IsNotSent(err) {
		// Nothing reached the seller: say what stopped it.
		var se *sellerclient.Error
		var ae *adcp.Error
		switch {
		case errors.As(err, &se) && se.Code != "":
			return se.Code
		case errors.As(err, &ae) && ae.Code != "" && len(ae.Details) == 0:
			return ae.Code
		}
	}
	switch {
	case errors.Is(err, errNoProduct):
		return "no_product"
	case errors.Is(err, sellerclient.ErrQuoteExpired):
		return "quote_expired"
	case errors.Is(err, sellerclient.ErrAlreadyBooked):
		return "already_booked"
	case errors.Is(err, sellerclient.ErrNotFound):
		return "not_found"
	case errors.Is(err, sellerclient.ErrIdempotencyConflict):
		return "idempotency_conflict"
	case errors.Is(err, sellerclient.ErrUnauthorized), errors.Is(err, sellerclient.ErrForbidden):
		return "unauthorized"
	case errors.Is(err, sellerclient.ErrValidation):
		return "rejected"
	default:
		return "seller_error"
	}
}
