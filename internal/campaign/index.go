package campaign

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/pkg/events"
)

// Summary is what listings and counts show of a campaign: a few fields of
// its record, kept in memory by the store's index.
type Summary struct {
	ID               string
	Status           Status
	Name             string
	BudgetMicros     events.Micros
	TotalSpendMicros events.Micros
	Deals            int
	// Unresolved counts its booking lines whose outcome is still unknown.
	Unresolved int
	CreatedAt  time.Time
}

// SummaryOf summarises a record.
func SummaryOf(c *Campaign) Summary {
	s := Summary{ID: c.ID, Status: c.Status, BudgetMicros: c.Budget(), TotalSpendMicros: c.TotalSpend(), Deals: len(c.Deals),
		Unresolved: len(c.Unresolved), CreatedAt: c.CreatedAt}
	if c.Request != nil {
		s.Name = c.Request.Brief.Name
	}
	return s
}

// summaryRecord decodes only what a Summary needs from a stored record
// (the watch delivers every record written, some of them large).
type summaryRecord struct {
	ID        string    `json:"id"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	Request   *struct {
		Brief struct {
			Name         string        `json:"name"`
			BudgetMicros events.Micros `json:"budget_micros"`
		} `json:"brief"`
	} `json:"request"`
	Deals []struct {
		SpendMicros events.Micros `json:"spend_micros"`
	} `json:"deals"`
	Unresolved []struct{} `json:"unresolved"`
}

func (r summaryRecord) summary() Summary {
	s := Summary{ID: r.ID, Status: r.Status, Deals: len(r.Deals), Unresolved: len(r.Unresolved), CreatedAt: r.CreatedAt}
	if r.Request != nil {
		s.Name, s.BudgetMicros = r.Request.Brief.Name, r.Request.Brief.BudgetMicros
	}
	for _, d := range r.Deals {
		s.TotalSpendMicros += d.SpendMicros
	}
	return s
}

// ListQuery selects a page of campaigns, newest first.
type ListQuery struct {
	// Status keeps only campaigns in that status ("" for all).
	Status        Status
	Offset, Limit int
}

// ListPage is one page of summaries, the number of campaigns the query
// matches, and every campaign counted by status.
type ListPage struct {
	Summaries []Summary
	Total     int
	Counts    map[Status]int
}

// Counts is the campaigns by status and their unresolved booking lines
// (the metrics' gauges).
type Counts struct {
	ByStatus        map[Status]int
	UnresolvedLines int
}

// index is the store's in-memory projection of every campaign record:
// a summary per campaign in newest-first order, overall and per status,
// fed by a watch of the bucket (every process's writes) and by this
// store's own writes (so a process lists what it just wrote). Listing
// and counting read it instead of every record: a page costs the same
// with a hundred campaigns or a hundred thousand.
type index struct {
	mu         sync.RWMutex
	byID       map[string]*indexed
	all        []*indexed            // oldest first: new campaigns append
	byStatus   map[Status][]*indexed // oldest first
	unresolved int

	start   sync.Once
	ready   chan struct{} // closed once the watch delivered every record
	live    atomic.Bool   // the watch is following the bucket
	stopped chan struct{} // closed when the watch loop ended for good
}

type indexed struct {
	Summary
	rev uint64
}

// before orders summaries oldest first, ties by id descending, so that
// read backwards they are newest first, ties by id.
func before(a, b *indexed) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID > b.ID
}

func newIndex() *index {
	return &index{byID: map[string]*indexed{}, byStatus: map[Status][]*indexed{}, ready: make(chan struct{}), stopped: make(chan struct{})}
}

// insert places e in the ordered list l.
func insert(l []*indexed, e *indexed) []*indexed {
	i := sort.Search(len(l), func(i int) bool { return before(e, l[i]) })
	l = append(l, nil)
	copy(l[i+1:], l[i:])
	l[i] = e
	return l
}

// remove takes e out of the ordered list l.
func remove(l []*indexed, e *indexed) []*indexed {
	i := sort.Search(len(l), func(i int) bool { return !before(l[i], e) })
	for ; i < len(l); i++ {
		if l[i] == e {
			copy(l[i:], l[i+1:])
			l[len(l)-1] = nil
			return l[:len(l)-1]
		}
	}
	return l
}

// put records a campaign's summary as of revision rev; an older revision
// than the one held (a watch replaying what this store already wrote)
// changes nothing.
func (x *index) put(s Summary, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old := x.byID[s.ID]
	if old != nil {
		if old.rev >= rev {
			return
		}
		x.drop(old)
	}
	e := &indexed{Summary: s, rev: rev}
	x.byID[s.ID] = e
	x.all = insert(x.all, e)
	x.byStatus[s.Status] = insert(x.byStatus[s.Status], e)
	x.unresolved += s.Unresolved
}

// del forgets a deleted campaign.
func (x *index) del(id string, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old := x.byID[id]; old != nil && old.rev < rev {
		x.drop(old)
		delete(x.byID, id)
	}
}

func (x *index) drop(e *indexed) {
	x.all = remove(x.all, e)
	x.byStatus[e.Status] = remove(x.byStatus[e.Status], e)
	x.unresolved -= e.Unresolved
}

// page answers q from the index.
func (x *index) page(q ListQuery) ListPage {
	x.mu.RLock()
	defer x.mu.RUnlock()
	l := x.all
	if q.Status != "" {
		l = x.byStatus[q.Status]
	}
	p := ListPage{Total: len(l), Counts: make(map[Status]int, len(x.byStatus))}
	for st, sl := range x.byStatus {
		if len(sl) > 0 {
			p.Counts[st] = len(sl)
		}
	}
	from := len(l) - 1 - max(q.Offset, 0)
	p.Summaries = make([]Summary, 0, max(min(q.Limit, from+1), 0))
	for i := from; i >= 0 && len(p.Summaries) < q.Limit; i-- {
		p.Summaries = append(p.Summaries, l[i].Summary)
	}
	return p
}

func (x *index) counts() Counts {
	x.mu.RLock()
	defer x.mu.RUnlock()
	c := Counts{ByStatus: make(map[Status]int, len(x.byStatus)), UnresolvedLines: x.unresolved}
	for st, sl := range x.byStatus {
		if len(sl) > 0 {
			c.ByStatus[st] = len(sl)
		}
	}
	return c
}

// errIndexStopped is the index's answer once its store is closed.
var errIndexStopped = errors.New("campaign: the store is closed")

// run follows the bucket until ctx ends, restarting a watch that fails.
// Each (re)start replays every record; revisions keep what is newer.
func (x *index) run(ctx context.Context, summaries *bus.Store[summaryRecord], log func(error)) {
	defer close(x.stopped)
	var once sync.Once
	for ctx.Err() == nil {
		err := summaries.Watch(ctx, func(ch bus.Change[summaryRecord]) {
			switch {
			case ch.Deleted:
				x.del(ch.Key, ch.Rev)
			case ch.Bad:
				// A record this version cannot read: leave what is known.
			default:
				s := ch.Value.summary()
				if s.ID == "" {
					s.ID = ch.Key
				}
				x.put(s, ch.Rev)
			}
		}, func() {
			x.live.Store(true)
			once.Do(func() { close(x.ready) })
		})
		x.live.Store(false)
		if ctx.Err() != nil {
			return
		}
		log(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// wait returns once the index holds every record and follows the
// bucket, or ctx ends first.
func (x *index) wait(ctx context.Context) error {
	select {
	case <-x.ready:
		if !x.live.Load() {
			return fmt.Errorf("%w: the campaign index lost its watch of the store; it is restarting", ErrUnavailable)
		}
		return nil
	case <-x.stopped:
		return errIndexStopped
	case <-ctx.Done():
		return fmt.Errorf("%w: the campaign index is still loading: %w", ErrUnavailable, ctx.Err())
	}
}
