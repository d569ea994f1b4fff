package campaign

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/dealflow/dealflow/pkg/events"
)

// LineKey identifies a plan line in the booking ledger: seller, package and
// quote, never the seller-minted quote id alone (two sellers may mint the
// same).
func LineKey(l events.PlanLine) string {
	h := sha256.Sum256([]byte(l.SellerURL + "|" + l.PackageID + "|" + l.QuoteID))
	return hex.EncodeToString(h[:12])
}

// DealLineKey is the line a deal was booked on: its line_key, or, for a
// DealBooked from before line_key, the key of the plan line it books.
func DealLineKey(d *events.DealBooked) string {
	if d.LineKey != "" {
		return d.LineKey
	}
	return LineKey(events.PlanLine{SellerURL: d.SellerURL, PackageID: d.PackageID, QuoteID: d.QuoteID})
}

// CheckApproval accepts only lines of the proposed plan, unchanged and each
// once: an approval cannot add deals, raise spend or change prices.
func CheckApproval(p *events.PortfolioProposed, a events.PortfolioApproved) error {
	planned := map[string]events.PlanLine{}
	for _, l := range p.Lines {
		planned[LineKey(l)] = l
	}
	seen := map[string]bool{}
	for _, l := range a.Lines {
		k := LineKey(l)
		pl, ok := planned[k]
		if !ok {
			return fmt.Errorf("%w: line %s/%s is not in plan revision %d", ErrSelection, l.SellerURL, l.PackageID, p.Revision)
		}
		if seen[k] {
			return fmt.Errorf("%w: line %s/%s approved twice", ErrSelection, l.SellerURL, l.PackageID)
		}
		seen[k] = true
		if pl.Impressions != l.Impressions || pl.CPMMicros != l.CPMMicros || pl.SpendMicros != l.SpendMicros {
			return fmt.Errorf("%w: line %s/%s differs from the plan", ErrSelection, l.SellerURL, l.PackageID)
		}
	}
	return nil
}

func sameLines(a, b []events.PlanLine) bool {
	if len(a) != len(b) {
		return false
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = LineKey(a[i]), LineKey(b[i])
	}
	sort.Strings(ka)
	sort.Strings(kb)
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

// Selection names the lines a buyer approves, by quote, package or product
// id (the reference's approved_product_ids).
type Selection struct {
	QuoteIDs   []string
	PackageIDs []string
	ProductIDs []string
}

// SelectionError is ErrSelection naming the request field and the ids.
type SelectionError struct {
	Field  string
	Reason string
	IDs    []string
}

// Error renders the field, the reason and the ids.
func (e *SelectionError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Field, e.Reason, strings.Join(e.IDs, ", "))
}

// Is matches ErrSelection.
func (e *SelectionError) Is(target error) bool { return target == ErrSelection }

// Select resolves a selection against the plan's lines. Every id must name
// exactly one line: an id that is not in the plan, or that matches lines at
// several sellers (package and product ids are per seller), approves
// nothing and is an error naming the ids.
func Select(p *events.PortfolioProposed, sel Selection) ([]events.PlanLine, error) {
	if p == nil {
		return nil, &SelectionError{Field: "approved_quote_ids", Reason: "there is no proposed portfolio"}
	}
	groups := []struct {
		field string
		ids   []string
		of    func(events.PlanLine) string
	}{
		{"approved_quote_ids", sel.QuoteIDs, func(l events.PlanLine) string { return l.QuoteID }},
		{"approved_package_ids", sel.PackageIDs, func(l events.PlanLine) string { return l.PackageID }},
		{"approved_product_ids", sel.ProductIDs, func(l events.PlanLine) string { return l.ProductID }},
	}
	picked := map[int]bool{}
	total := 0
	for _, g := range groups {
		var missing, ambiguous []string
		for _, id := range g.ids {
			total++
			var hits []int
			for i, l := range p.Lines {
				if id != "" && g.of(l) == id {
					hits = append(hits, i)
				}
			}
			switch len(hits) {
			case 0:
				missing = append(missing, id)
			case 1:
				picked[hits[0]] = true
			default:
				ambiguous = append(ambiguous, id)
			}
		}
		if len(ambiguous) > 0 {
			return nil, &SelectionError{Field: g.field, Reason: "these ids match lines at several sellers; name the lines by approved_quote_ids", IDs: ambiguous}
		}
		if len(missing) > 0 {
			return nil, &SelectionError{Field: g.field, Reason: "not in the proposed portfolio", IDs: missing}
		}
	}
	if total == 0 {
		return nil, &SelectionError{Field: "approved_quote_ids", Reason: "name at least one line (quote, package or product id); use approve-all to approve everything"}
	}
	var lines []events.PlanLine
	for i, l := range p.Lines {
		if picked[i] {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
