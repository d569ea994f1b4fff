package activator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dealflow/dealflow/pkg/events"
)

// DSP is the port the activator sets deals up through: the buyer's
// demand-side platform, or whatever stands in front of it (a trafficking
// service behind a webhook, a folder a bulk-upload job reads). Two
// implementations ship: Webhook (a signed HTTP POST, also what the sandbox
// DSP in internal/sandbox serves) and Files (a signed file per deal).
//
// Activate must be idempotent on Activation.IdempotencyKey: the activator
// sends the same key for every attempt of one deal (after a timeout, a
// crash or a redelivery it cannot know whether an attempt arrived), and
// the DSP sets the deal up once.
type DSP interface {
	// Name is what DealActivated.dsp says: webhook or file.
	Name() string
	// Activate sets the deal up. A failure is an *Error saying whether
	// another attempt may succeed.
	Activate(ctx context.Context, a Activation) (Receipt, error)
}

// Activation is what is sent to the DSP for one deal: the seller's terms
// (activation_instructions and openrtb_params included), the deal's
// idempotency key and where it comes from.
type Activation struct {
	IdempotencyKey string           `json:"idempotency_key"`
	DealKey        string           `json:"deal_key"`
	CampaignID     string           `json:"campaign_id"`
	LineKey        string           `json:"line_key,omitempty"`
	Origin         string           `json:"origin"`
	Attempt        int              `json:"attempt"`
	Deal           events.DealTerms `json:"deal"`
	RequestedAt    time.Time        `json:"requested_at"`
}

// Receipt is the DSP's answer to an activation.
type Receipt struct {
	// Ref is the DSP's own reference of the activation, when it gives one.
	Ref string
	// Replayed: the DSP had this idempotency key already (an earlier
	// attempt arrived) and answered with that activation.
	Replayed bool
}

// Codes of an activation failure (DealActivationFailed.code).
const (
	CodeRefused     = "refused"     // the DSP refused the deal (a 4xx answer): final
	CodeHTTPError   = "http_error"  // a 5xx, 408 or 429 answer: retried
	CodeTimeout     = "timeout"     // no answer in time: retried with the same key
	CodeUnreachable = "unreachable" // refused connection, DNS, TLS: retried
	CodeBlocked     = "blocked"     // the address guard refuses the DSP's address: final
	CodeIO          = "io"          // the file activator could not write: retried
	CodeGaveUp      = "gave_up"     // the attempts ran out: final
)

// Error is a failed activation attempt.
type Error struct {
	Code      string
	Reason    string
	Retryable bool
	Err       error
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Reason }

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Err }

// asError is err as an *Error; an error of another kind is retryable (a
// DSP implementation that does not say is given another chance).
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeTimeout, Reason: err.Error(), Retryable: true, Err: err}
	}
	return &Error{Code: CodeUnreachable, Reason: fmt.Sprint(err), Retryable: true, Err: err}
}
