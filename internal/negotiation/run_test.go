package negotiation

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is a seller that answers the buyer's counters from a script (the
// last reply repeats) and records every message, like the reference tests'
// list of POSTs.
type scripted struct {
	mu      sync.Mutex
	replies []Round // answers to counters, in order
	sent    []string
	offers  int
	fail    error // returned for every message when set
	block   bool  // wait for ctx to end
	confirm float64
}

func (s *scripted) Respond(ctx context.Context, m Move, round int) (Round, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.Kind {
	case Offer:
		s.sent = append(s.sent, fmt.Sprintf("counter %g", m.Price))
	case Accept:
		s.sent = append(s.sent, fmt.Sprintf("accept %g", m.Price))
	case WalkAway:
		s.sent = append(s.sent, "reject")
	}
	if s.block {
		<-ctx.Done()
		return Round{}, ctx.Err()
	}
	if s.fail != nil {
		return Round{}, s.fail
	}
	switch m.Kind {
	case Accept:
		p := m.Price
		if s.confirm != 0 {
			p = s.confirm
		}
		return Round{N: round, BuyerPrice: m.Price, SellerPrice: p, SellerAction: ActionAccept}, nil
	case WalkAway:
		return Round{N: round, SellerAction: ActionReject}, nil
	}
	i := min(s.offers, len(s.replies)-1)
	s.offers++
	r := s.replies[i]
	r.N = round
	return r, nil
}

func counter(p float64) Round { return Round{SellerPrice: p, SellerAction: ActionCounter} }
func final(p float64) Round   { return Round{SellerPrice: p, SellerAction: ActionFinalOffer} }
func sAccept(p float64) Round { return Round{SellerPrice: p, SellerAction: ActionAccept} }
func sReject(p float64) Round { return Round{SellerPrice: p, SellerAction: ActionReject} }

func TestRunReferenceCases(t *testing.T) {
	t.Parallel()
	S := func(target, max, step float64, rounds int) Threshold { return Threshold{target, max, step, rounds} }
	cases := []struct {
		id      string
		s       Strategy
		st      State
		replies []Round
		outcome Outcome
		price   float64
		rounds  int
		sent    []string
		err     error
	}{
		{"N-1", S(20, 30, 2, 5), State{}, []Round{counter(28)}, OutcomeAccepted, 28, 1, []string{"counter 20", "accept 28"}, nil},
		{"N-1 with list price", S(20, 30, 2, 5), State{ListPrice: 35}, []Round{counter(28)}, OutcomeAccepted, 28, 1, []string{"counter 20", "accept 28"}, nil},
		{"N-2", S(20, 25, 1, 3), State{}, []Round{counter(40)}, OutcomeWalkedAway, 0, 2, []string{"counter 20", "counter 21", "reject"}, nil},
		{"N-3 seller accepts the opening", S(20, 30, 2, 5), State{}, []Round{sAccept(20)}, OutcomeAccepted, 20, 1, []string{"counter 20"}, nil},
		{"N-4", S(20, 30, 3, 5), State{}, []Round{counter(40), counter(35), sAccept(26)}, OutcomeAccepted, 26, 3, []string{"counter 20", "counter 23", "counter 26"}, nil},
		{"N-5", S(20, 30, 2, 5), State{}, []Round{counter(35), counter(29)}, OutcomeAccepted, 29, 2, []string{"counter 20", "counter 22", "accept 29"}, nil},
		// N-6 and N-7 after the fix: a seller reject ends the negotiation as
		// rejected (the reference called N-6 walked_away and accepted N-7).
		{"N-6 fixed", S(20, 30, 2, 10), State{}, []Round{counter(35), sReject(35)}, OutcomeRejected, 0, 2, []string{"counter 20", "counter 22"}, nil},
		{"N-7 fixed: reject within max is still a reject", S(20, 30, 2, 10), State{}, []Round{counter(35), sReject(29)}, OutcomeRejected, 0, 2, []string{"counter 20", "counter 22"}, nil},
		{"N-8", S(20, 30, 1, 3), State{}, []Round{counter(40), counter(39), counter(38)}, OutcomeWalkedAway, 0, 3, []string{"counter 20", "counter 21", "counter 22", "reject"}, nil},
		{"N-9 fixed: missing price is an error", S(20, 30, 2, 5), State{}, []Round{{SellerAction: ActionCounter}}, OutcomeError, 0, 0, []string{"counter 20"}, ErrMissingSellerPrice},
		// New cases for the fixes.
		{"round-1 reject ends", S(20, 30, 2, 5), State{}, []Round{sReject(35)}, OutcomeRejected, 0, 1, []string{"counter 20"}, nil},
		{"S-7 fixed: opening clamped to State.Max", S(20, 30, 2, 5), State{Target: 35, Max: 25}, []Round{counter(40)}, OutcomeWalkedAway, 0, 2, []string{"counter 25", "counter 25", "reject"}, nil},
		{"list price within the opening: no message", S(20, 30, 2, 5), State{ListPrice: 18}, nil, OutcomeAccepted, 18, 0, nil, nil},
		{"final offer above max", S(20, 30, 2, 5), State{}, []Round{counter(35), final(31)}, OutcomeWalkedAway, 0, 2, []string{"counter 20", "counter 22", "reject"}, nil},
		{"final offer within max", S(20, 30, 2, 5), State{}, []Round{counter(35), final(30)}, OutcomeAccepted, 30, 2, []string{"counter 20", "counter 22", "accept 30"}, nil},
		{"seller round limit", S(20, 30, 2, 10), State{SellerMaxRounds: 2}, []Round{counter(40), counter(38)}, OutcomeWalkedAway, 0, 2, []string{"counter 20", "counter 22", "reject"}, nil},
		{"O-11 seller accept above max is declined", S(20, 30, 2, 5), State{}, []Round{sAccept(31)}, OutcomeWalkedAway, 0, 1, []string{"counter 20", "reject"}, nil},
		{"unknown seller action", S(20, 30, 2, 5), State{}, []Round{{SellerPrice: 30, SellerAction: "maybe"}}, OutcomeError, 0, 0, []string{"counter 20"}, ErrSellerRound},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			t.Parallel()
			cp := &scripted{replies: c.replies}
			res, err := Run(context.Background(), c.s, c.st, cp)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if res.Outcome != c.outcome || res.FinalPrice != c.price || len(res.Rounds) != c.rounds {
				t.Fatalf("result %+v, want %s %v %d rounds", res, c.outcome, c.price, c.rounds)
			}
			if !reflect.DeepEqual(cp.sent, c.sent) {
				t.Fatalf("sent %q, want %q", cp.sent, c.sent)
			}
			if res.Reason == "" {
				t.Fatal("empty reason")
			}
			for i, r := range res.Rounds {
				if r.N != i+1 || r.BuyerPrice <= 0 {
					t.Fatalf("round %d = %+v", i, r)
				}
			}
		})
	}
}

// badStrategy returns whatever move it is given.
type badStrategy struct{ m Move }

func (b badStrategy) Name() string               { return "bad" }
func (b badStrategy) Next(State) (Move, error)   { return b.m, nil }
func (b badStrategy) Limits() (float64, float64) { return 10, 30 }

type errStrategy struct{}

func (errStrategy) Name() string             { return "err" }
func (errStrategy) Next(State) (Move, error) { return Move{}, errors.New("boom") }

func TestRunGuards(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		s       Strategy
		st      State
		replies []Round
		err     error
		sent    int
	}{
		{"offer above max", badStrategy{Move{Kind: Offer, Price: 31}}, State{ListPrice: 40}, nil, ErrInvalidMove, 0},
		{"offer above State.Max", badStrategy{Move{Kind: Offer, Price: 26}}, State{ListPrice: 40, Max: 25}, nil, ErrInvalidMove, 0},
		{"offer at the ask", badStrategy{Move{Kind: Offer, Price: 25}}, State{ListPrice: 25}, nil, ErrInvalidMove, 0},
		{"zero offer", badStrategy{Move{Kind: Offer}}, State{ListPrice: 25}, nil, ErrInvalidMove, 0},
		{"counter after final offer", badStrategy{Move{Kind: Offer, Price: 20}}, State{ListPrice: 40}, []Round{final(35)}, ErrInvalidMove, 1},
		{"never-ending strategy is bounded", badStrategy{Move{Kind: Offer, Price: 20}}, State{ListPrice: 40}, []Round{counter(35)}, ErrInvalidMove, maxLoopRounds},
		{"accept above max", badStrategy{Move{Kind: Accept}}, State{ListPrice: 40}, nil, ErrInvalidMove, 0},
		{"unknown move", badStrategy{Move{Kind: MoveKind(9)}}, State{ListPrice: 40}, nil, ErrInvalidMove, 0},
		{"strategy error", errStrategy{}, State{ListPrice: 40}, nil, nil, 0},
		{"invalid state", Threshold{20, 30, 2, 5}, State{ListPrice: -3}, nil, ErrInvalidState, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cp := &scripted{replies: c.replies}
			res, err := Run(context.Background(), c.s, c.st, cp)
			if res.Outcome != OutcomeError || err == nil || res.Reason != err.Error() {
				t.Fatalf("result %+v err %v", res, err)
			}
			if c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if len(cp.sent) != c.sent {
				t.Fatalf("sent %d messages, want %d", len(cp.sent), c.sent)
			}
		})
	}
	if _, err := Run(context.Background(), nil, State{}, &scripted{}); !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("nil strategy: %v", err)
	}
}

func TestRunErrorsAndDeadline(t *testing.T) {
	t.Parallel()
	s := Threshold{20, 30, 2, 5}
	t.Run("transport error", func(t *testing.T) {
		boom := errors.New("connection refused")
		res, err := Run(context.Background(), s, State{ListPrice: 40}, &scripted{fail: boom})
		if res.Outcome != OutcomeError || !errors.Is(err, boom) || !strings.Contains(res.Reason, "connection refused") {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("accept fails", func(t *testing.T) {
		cp := &scripted{replies: []Round{counter(28)}}
		res, err := Run(context.Background(), s, State{}, &failAccept{cp})
		if res.Outcome != OutcomeError || err == nil || len(res.Rounds) != 1 {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("accept confirmed at another price", func(t *testing.T) {
		cp := &scripted{replies: []Round{counter(28)}, confirm: 29}
		res, err := Run(context.Background(), s, State{}, cp)
		if res.Outcome != OutcomeError || !errors.Is(err, ErrSellerRound) {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("State.Deadline", func(t *testing.T) {
		start := time.Now()
		res, err := Run(context.Background(), s, State{ListPrice: 40, Deadline: 50 * time.Millisecond}, &scripted{block: true})
		if res.Outcome != OutcomeDeadline || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%+v %v", res, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("deadline already spent", func(t *testing.T) {
		cp := &scripted{replies: []Round{counter(40)}}
		res, err := Run(context.Background(), s, State{ListPrice: 40, Elapsed: time.Second, Deadline: time.Second}, cp)
		if res.Outcome != OutcomeDeadline || err == nil || len(cp.sent) != 0 {
			t.Fatalf("%+v %v %v", res, err, cp.sent)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		res, err := Run(ctx, s, State{ListPrice: 40}, &scripted{block: true})
		if res.Outcome != OutcomeDeadline || !errors.Is(err, context.Canceled) {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("walk away message failure keeps the outcome", func(t *testing.T) {
		cp := &failWalk{&scripted{replies: []Round{counter(40)}}}
		res, err := Run(context.Background(), Threshold{20, 25, 1, 3}, State{}, cp)
		if err != nil || res.Outcome != OutcomeWalkedAway || !strings.Contains(res.Reason, "reject message failed") {
			t.Fatalf("%+v %v", res, err)
		}
	})
	t.Run("resume from earlier rounds", func(t *testing.T) {
		cp := &scripted{replies: []Round{counter(29)}}
		res, err := Run(context.Background(), s, State{Rounds: []Round{{N: 1, BuyerPrice: 20, SellerPrice: 35, SellerAction: ActionCounter}}}, cp)
		if err != nil || res.Outcome != OutcomeAccepted || res.FinalPrice != 29 || len(res.Rounds) != 2 || res.Rounds[1].N != 2 {
			t.Fatalf("%+v %v", res, err)
		}
		if !reflect.DeepEqual(cp.sent, []string{"counter 22", "accept 29"}) {
			t.Fatalf("sent %q", cp.sent)
		}
	})
}

type failAccept struct{ *scripted }

func (f *failAccept) Respond(ctx context.Context, m Move, n int) (Round, error) {
	if m.Kind == Accept {
		return Round{}, errors.New("503")
	}
	return f.scripted.Respond(ctx, m, n)
}

type failWalk struct{ *scripted }

func (f *failWalk) Respond(ctx context.Context, m Move, n int) (Round, error) {
	if m.Kind == WalkAway {
		return Round{}, errors.New("reset")
	}
	return f.scripted.Respond(ctx, m, n)
}
