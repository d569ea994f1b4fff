// Package notifier is the stage that delivers a campaign's status changes
// and booked deals to the campaign's webhook.
//
// A campaign submitted through the bookings API with
// "notify":{"url","secret"} gets a record in the dealflow_webhooks bucket
// (URL and secret, keyed by campaign id, written by the API before the
// campaign is published); CampaignRequested carries only the URL. For each
// PortfolioProposed, PortfolioApproved, DealBooked, CampaignRejected and
// CampaignCompleted of such a campaign the notifier POSTs the CloudEvent in
// structured mode (the JSON event format, Content-Type
// application/cloudevents+json) with
//
//	X-Dealflow-Event-Id:  the CloudEvent id (the receiver's de-duplication key)
//	X-Dealflow-Timestamp: Unix seconds when this attempt was signed
//	X-Dealflow-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A 2xx answer is a delivery. Anything else (another status, a timeout, a
// refused connection) is an error, so the stage runner retries it with
// backoff and dead-letters it with the reason after the last attempt: at
// least once, from a durable consumer, so a restart loses no delivery.
package notifier

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Stage is the stage and durable consumer name.
const Stage = "notifier"

// Headers of every delivery.
const (
	HeaderSignature = "X-Dealflow-Signature"
	HeaderEventID   = "X-Dealflow-Event-Id"
	HeaderTimestamp = "X-Dealflow-Timestamp"
	// ContentType is the CloudEvents structured-mode media type.
	ContentType = "application/cloudevents+json"
)

// Kinds are the events delivered to webhooks: every status change, every
// booked deal and every line that failed or whose outcome is unresolved
// (and, later, what the reconciler found for it), and after the booking
// every line change's outcome and the lines paused, resumed or cancelled.
var Kinds = []events.Kind{events.KindPortfolioProposed, events.KindPortfolioApproved, events.KindDealBooked, events.KindBookingFailed,
	events.KindCampaignRejected, events.KindCampaignCompleted,
	events.KindLineChanged, events.KindLineChangeFailed, events.KindLinePaused, events.KindLineResumed, events.KindDealCancelled}

// Subjects are the stage's inputs.
func Subjects() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.Filter()
	}
	return out
}

// Webhook is one campaign's webhook as stored in dealflow_webhooks.
type Webhook struct {
	URL       string    `json:"url"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

// Webhooks looks up a campaign's webhook (bus.Store[Webhook] is one).
type Webhooks interface {
	Get(ctx context.Context, campaignID string) (Webhook, bool, error)
}

// Sign returns the X-Dealflow-Signature value for body signed at timestamp
// (the X-Dealflow-Timestamp value): "sha256=" and the lower-case hex
// HMAC-SHA256, keyed with the secret, of timestamp + "." + body.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is Sign(secret, timestamp, body), in
// constant time. Receivers should also refuse timestamps too far from now.
func Verify(secret, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body)))
}

// Service delivers webhooks.
type Service struct {
	Webhooks Webhooks
	// Client posts the deliveries; nil means Guard.HTTPClient(Timeout).
	Client *http.Client
	// Guard decides which addresses a webhook may reach (the zero Guard:
	// public addresses only).
	Guard sellerclient.Guard
	// Timeout bounds one delivery (default 10s).
	Timeout time.Duration
	Now     func() time.Time
	Log     zerolog.Logger
}

// New returns a Service with its HTTP client.
func New(webhooks Webhooks, guard sellerclient.Guard, log zerolog.Logger) *Service {
	s := &Service{Webhooks: webhooks, Guard: guard, Timeout: 10 * time.Second, Log: log}
	s.Client = guard.HTTPClient(s.Timeout)
	return s
}

// StageConfig is the notifier's consumer: retries with backoff from 1s to
// 2m, dead-lettered after 10 attempts (about 6 minutes of trying).
func StageConfig() bus.StageConfig {
	return bus.StageConfig{Name: Stage, Subjects: Subjects(), Workers: 16, AckWait: 30 * time.Second,
		MaxDeliver: 10, RetryBase: time.Second, RetryMax: 2 * time.Minute}
}

// Handle delivers one event to its campaign's webhook, if it has one. It
// returns an error to be retried when the receiver does not answer 2xx.
func (s *Service) Handle(ctx context.Context, in events.Event) ([]events.Event, error) {
	wh, found, err := s.Webhooks.Get(ctx, in.Subject())
	if err != nil {
		return nil, err
	}
	if !found || wh.URL == "" {
		return nil, nil
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, bus.Permanent(fmt.Errorf("notifier: encode %s: %w", in.ID(), err))
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(body))
	if err != nil {
		return nil, bus.Permanent(fmt.Errorf("notifier: webhook %s: %w", wh.URL, err))
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "dealflow-notifier/1")
	req.Header.Set(HeaderEventID, in.ID())
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(wh.Secret, ts, body))
	client := s.Client
	if client == nil {
		client = s.Guard.HTTPClient(orDefault(s.Timeout, 10*time.Second))
	}
	resp, err := client.Do(req)
	if err != nil {
		if sellerclient.IsPrivateDialError(err) {
			return nil, bus.Permanent(fmt.Errorf("notifier: webhook %s resolves to a private or special-purpose address the address guard refuses: %w", wh.URL, err))
		}
		return nil, fmt.Errorf("notifier: webhook %s: %w", wh.URL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("notifier: webhook %s answered %d to %s", wh.URL, resp.StatusCode, in.Type())
	}
	s.Log.Debug().Str("campaign_id", in.Subject()).Str("event_type", in.Type()).Str("event_id", in.ID()).Msg("webhook delivered")
	return nil, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
