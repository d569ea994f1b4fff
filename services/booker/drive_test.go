package booker

import (
	"context"
	"errors"

	"github.com/dealflow/dealflow/pkg/events"
)

// bookAll runs an approval through the booker as the pipeline would, in
// one goroutine: the book consumer fans it out, the line consumer books
// each line, and the plan consumer folds each outcome (finishing the
// campaign, or re-planning). It returns every event they emitted, in
// order; a re-plan's PortfolioApproved is returned, not booked. A line
// whose handling fails (an unknown outcome) does not stop the others: the
// first such error is returned with the events of the rest.
func (s *Service) bookAll(ctx context.Context, appr events.Event) ([]events.Event, error) {
	lines, err := s.HandleBook(ctx, appr)
	if err != nil {
		return nil, err
	}
	out := append([]events.Event(nil), lines...)
	var errs []error
	for _, l := range lines {
		outs, err := s.HandleLine(ctx, l)
		out = append(out, outs...)
		if err != nil {
			errs = append(errs, err)
		}
		for _, o := range outs {
			more, err := s.HandlePlan(ctx, o)
			if err != nil {
				return out, err
			}
			out = append(out, more...)
		}
	}
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}

// line runs one LineApproved through the line consumer and its outcomes
// through the plan consumer, returning both handlers' events and the line
// consumer's error (an unknown outcome, or bus.Again).
func (s *Service) line(ctx context.Context, l events.Event) ([]events.Event, error) {
	outs, lerr := s.HandleLine(ctx, l)
	all := append([]events.Event(nil), outs...)
	for _, o := range outs {
		more, err := s.HandlePlan(ctx, o)
		if err != nil {
			return all, errors.Join(lerr, err)
		}
		all = append(all, more...)
	}
	return all, lerr
}
