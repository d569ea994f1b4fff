package negotiation

import (
	"fmt"
	"sort"
	"strings"
)

// Params configures a strategy by name. Step is used by threshold only.
type Params struct {
	Target, Max, Step float64
	MaxRounds         int
}

// Names lists the strategies New knows, sorted.
func Names() []string {
	n := []string{"threshold", "adaptive", "competitive"}
	sort.Strings(n)
	return n
}

// New builds the named strategy ("threshold", "adaptive" or "competitive",
// case-insensitive) and validates its parameters. Errors wrap
// ErrUnknownStrategy or ErrInvalidParams.
func New(name string, p Params) (Strategy, error) {
	var s interface {
		Strategy
		Validate() error
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "threshold":
		s = Threshold(p)
	case "adaptive":
		s = Adaptive{Target: p.Target, Max: p.Max, MaxRounds: p.MaxRounds}
	case "competitive":
		s = Competitive{Target: p.Target, Max: p.Max, MaxRounds: p.MaxRounds}
	default:
		return nil, fmt.Errorf("%w: %q (want one of %s)", ErrUnknownStrategy, name, strings.Join(Names(), ", "))
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name(), err)
	}
	return s, nil
}
