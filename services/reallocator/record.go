package reallocator

import (
	"context"
	"strconv"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Record is the reallocator's record of one campaign, in the
// dealflow_reallocations bucket under the campaign id: the booked lines
// (budget now, state, latest snapshot), the deviation episodes acted on and
// every revision. The reallocator's consumer is its only writer, every
// write revision-checked; the bookings API reads it.
type Record struct {
	CampaignID string `json:"campaign_id"`
	// Loaded: Budget and AutoApprove were read from the campaign.
	Loaded      bool          `json:"loaded,omitempty"`
	Budget      events.Micros `json:"budget_micros"`
	AutoApprove bool          `json:"auto_approve,omitempty"`
	// SellerCap is the brief's per_seller_cap_micros (0: none): no move
	// takes a seller's lines past it.
	SellerCap events.Micros `json:"seller_cap_micros,omitempty"`
	// Committed is the campaign's committed spend the booker last
	// reported (LineChanged.committed_micros); 0 before any change.
	Committed events.Micros    `json:"committed_micros,omitempty"`
	Lines     map[string]*Line `json:"lines"`
	// Episodes are the deviation episodes settled, by EpisodeKey: the
	// revision proposed for it, or 0 when there was nothing to move.
	Episodes  map[string]int `json:"episodes,omitempty"`
	Revisions []*Revision    `json:"revisions,omitempty"`
}

// Line is one booked line as the reallocator knows it.
type Line struct {
	LineKey    string           `json:"line_key"`
	SellerURL  string           `json:"seller_url"`
	SellerName string           `json:"seller_name,omitempty"`
	PackageID  string           `json:"package_id"`
	Budget     events.Micros    `json:"budget_micros"`
	State      events.LineState `json:"state,omitempty"`
	// Seq is the latest snapshot's (-1 before the first); Status, Spend,
	// Elapsed and Final its numbers.
	Seq     int                 `json:"seq"`
	Status  events.PacingStatus `json:"status,omitempty"`
	Spend   events.Micros       `json:"spend_micros,omitempty"`
	Elapsed float64             `json:"flight_elapsed,omitempty"`
	Final   bool                `json:"final,omitempty"`
	// PausedBy is the revision that paused the line for its pace, while it
	// is paused by it (0 otherwise, and for a line the buyer paused, which
	// only the buyer resumes).
	PausedBy int `json:"paused_by_revision,omitempty"`
}

// Revision statuses.
const (
	StatusProposed = "proposed"
	StatusRejected = "rejected"
	StatusApplying = "applying"
	StatusApplied  = "applied"
	StatusFailed   = "failed"
)

// Revision is one reallocation of the campaign and where it stands.
type Revision struct {
	Revision int    `json:"revision"`
	Status   string `json:"status" desc:"proposed, rejected, applying, applied or failed."`
	// Proposal is the ReallocationProposed as published.
	Proposal events.ReallocationProposed `json:"proposal"`
	// DecidedBy is auto or api (approval), or who rejected it.
	DecidedBy string     `json:"decided_by,omitempty"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	// Changes are the line changes applying it: decreases and pauses
	// (phase 1) first, then the increases (phase 2) once every phase-1
	// change has its outcome.
	Changes []Change `json:"changes,omitempty"`
	// Moves is each move's outcome, once the revision ended.
	Moves   []events.ReallocationMoveOutcome `json:"moves,omitempty"`
	EndedAt *time.Time                       `json:"ended_at,omitempty"`

	// The inputs whose handling published this revision's events: a
	// redelivery of one publishes the same events again, under the same
	// ids; any other input publishes nothing.
	ProposedBy string    `json:"proposed_by,omitempty"`
	ApprovedBy string    `json:"approved_by_event,omitempty"`
	Phase2By   string    `json:"phase2_by,omitempty"`
	EndedBy    string    `json:"ended_by,omitempty"`
	Phase1At   time.Time `json:"phase1_at,omitzero"`
	Phase2At   time.Time `json:"phase2_at,omitzero"`
}

// Change is one line change of a revision.
type Change struct {
	events.ReallocationChange
	Phase int `json:"phase"`
}

// Pending reports whether the revision has not ended: proposed, or being
// applied.
func (r *Revision) Pending() bool { return r.Status == StatusProposed || r.Status == StatusApplying }

// Pending is the campaign's pending revision, if any: never more than one.
func (r *Record) Pending() *Revision {
	for _, v := range r.Revisions {
		if v.Pending() {
			return v
		}
	}
	return nil
}

// Revision is revision n, or nil.
func (r *Record) Revision(n int) *Revision {
	if n < 1 || n > len(r.Revisions) {
		return nil
	}
	return r.Revisions[n-1]
}

// ResumeKey names the resume of a line paused by revision n: one proposal
// per pause, kept with the deviation episodes.
func ResumeKey(lineKey string, n int) string { return lineKey + "/resume/" + strconv.Itoa(n) }

// EpisodeKey names a deviation episode.
func EpisodeKey(lineKey string, d events.Deviation, sinceSeq int) string {
	return lineKey + "/" + string(d) + "/" + strconv.Itoa(sinceSeq)
}

// ChangeID is the change_id of change i of a campaign's revision: one id
// per change, whatever publishes its request and however often, so the
// booker applies each at most once.
func ChangeID(campaignID string, revision, i int) string {
	return "realloc-" + campaignID + "-" + strconv.Itoa(revision) + "-" + strconv.Itoa(i)
}

// Records is the reallocation bucket, for the stage and the bookings API
// (which only reads it).
type Records struct{ store *bus.Store[Record] }

// OpenRecords opens the dealflow_reallocations bucket.
func OpenRecords(ctx context.Context, b *bus.Bus) (*Records, error) {
	s, err := bus.OpenStore[Record](ctx, b, bus.BucketReallocations)
	if err != nil {
		return nil, err
	}
	return &Records{store: s}, nil
}

// NewRecords wraps a store (tests).
func NewRecords(s *bus.Store[Record]) *Records { return &Records{store: s} }

// Get reads a campaign's record.
func (r *Records) Get(ctx context.Context, campaignID string) (Record, bool, error) {
	return r.store.Get(ctx, campaignID)
}

func (r *Records) update(ctx context.Context, campaignID string, fn func(v *Record, exists bool) (bool, error)) (Record, error) {
	return r.store.Update(ctx, campaignID, func(v *Record, exists bool) (bool, error) {
		if !exists {
			*v = Record{CampaignID: campaignID}
		}
		if v.Lines == nil {
			v.Lines = map[string]*Line{}
		}
		if v.Episodes == nil {
			v.Episodes = map[string]int{}
		}
		return fn(v, exists)
	})
}
