package events

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The contract's rules for a payload value. The schemas are generated from
// the payload types (GenerateSchema), so a value encoded by encoding/json
// always has the types, the required members and the maps' value types its
// schema asks for; what remains for a value to break are the schema's enums
// (Tier, Trust, Protocol, CampaignStatus) and the campaign_id pattern, and
// that is what Validate checks, exactly: FuzzValidateAgreesWithSchema holds
// each Validate to the schema's verdict on the value's encoding, and
// TestValidateCoversEveryEnumAndPattern to every enum and pattern the
// schemas have.

// payload is implemented by every payload type of the contract.
type payload interface {
	Validate() error
	// campaign is the payload's campaign_id, which must equal the event's
	// subject.
	campaign() string
}

const campaignIDReason = "must be 1-64 characters of [A-Za-z0-9_-]"

// checkCampaignID refuses an id the schemas' campaign_id pattern refuses.
func checkCampaignID(prefix, id string) error {
	if ValidateCampaignID(id) != nil {
		return &FieldError{Field: at(prefix, "campaign_id"), Reason: campaignIDReason}
	}
	return nil
}

// checkEnum refuses a value outside values; optional allows the empty
// value, which encoding/json leaves out (omitempty) and so the schema
// never sees. The field is prefix.name.
func checkEnum[T ~string](prefix, name string, v T, values []T, optional bool) error {
	if (optional && v == "") || slices.Contains(values, v) {
		return nil
	}
	names := make([]string, len(values))
	for i, x := range values {
		names[i] = string(x)
	}
	return &FieldError{Field: at(prefix, name), Reason: "must be one of " + strings.Join(names, ", ")}
}

// join returns the first non-nil error.
func join(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// at is the path of member name below prefix ("" for the payload itself).
func at(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func (s Seller) validate(prefix string) error {
	return join(checkEnum(prefix, "trust", s.Trust, Trusts, false),
		checkEnum(prefix, "protocol", s.Protocol, Protocols, true))
}

func (d Disclosure) validate(prefix string) error {
	return join(checkEnum(prefix, "tier", d.Tier, Tiers, false),
		checkEnum(prefix, "recommended", d.Recommended, Tiers, false),
		checkEnum(prefix, "cap", d.Cap, Tiers, false))
}

func (l PlanLine) validate(prefix string) error {
	return join(checkEnum(prefix, "protocol", l.Protocol, Protocols, true),
		checkEnum(prefix, "tier", l.Tier, Tiers, true))
}

func validateLines(lines []PlanLine) error {
	for i := range lines {
		if err := lines[i].validate(""); err != nil {
			return prefixed(index("lines", i), err)
		}
	}
	return nil
}

// prefixed puts the path of the item a *FieldError is about in front of
// its field: the path is made only for an error.
func prefixed(prefix string, err error) error {
	if fe, ok := err.(*FieldError); ok {
		return &FieldError{Field: at(prefix, fe.Field), Reason: fe.Reason}
	}
	return err
}

func (d DealBooked) validate() error {
	return join(checkCampaignID("", d.CampaignID),
		checkEnum("", "protocol", d.Protocol, Protocols, true),
		checkEnum("", "tier", d.Tier, Tiers, false))
}

func (f BookingFailed) validate() error {
	return join(checkCampaignID("", f.CampaignID),
		checkEnum("", "protocol", f.Protocol, Protocols, true))
}

// Validate checks the request against the contract: its campaign id. The
// brief's limits are ValidateAt's.
func (c CampaignRequested) Validate() error { return checkCampaignID("", c.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (c CampaignRejected) Validate() error { return checkCampaignID("", c.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (s SellerFound) Validate() error {
	return join(checkCampaignID("", s.CampaignID), s.Seller.validate("seller"), s.Disclosure.validate("disclosure"))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (s SellerSkipped) Validate() error {
	return join(checkCampaignID("", s.CampaignID),
		checkEnum("", "protocol", s.Protocol, Protocols, true),
		checkEnum("", "trust", s.Trust, Trusts, true))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DiscoveryCompleted) Validate() error { return checkCampaignID("", d.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p PackageFound) Validate() error {
	return join(checkCampaignID("", p.CampaignID), p.Seller.validate("seller"), p.Disclosure.validate("disclosure"))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (q QuoteReady) Validate() error {
	return join(checkCampaignID("", q.CampaignID), q.Seller.validate("seller"),
		checkEnum("", "tier", q.Tier, Tiers, false))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (s ShoppingDeadlinePassed) Validate() error { return checkCampaignID("", s.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p PortfolioProposed) Validate() error {
	return join(checkCampaignID("", p.CampaignID), validateLines(p.Lines))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p PortfolioApproved) Validate() error {
	return join(checkCampaignID("", p.CampaignID), validateLines(p.Lines))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (l LineApproved) Validate() error {
	return join(checkCampaignID("", l.CampaignID), prefixed("line", l.Line.validate("")))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DealBooked) Validate() error { return d.validate() }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (f BookingFailed) Validate() error { return f.validate() }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (c CampaignCompleted) Validate() error {
	if err := join(checkCampaignID("", c.CampaignID), checkEnum("", "status", c.Status, CampaignStatuses, false)); err != nil {
		return err
	}
	for i := range c.Deals {
		if err := c.Deals[i].validate(); err != nil {
			return prefixed(index("deals", i), err)
		}
	}
	for i := range c.Failed {
		if err := c.Failed[i].validate(); err != nil {
			return prefixed(index("failed", i), err)
		}
	}
	for i := range c.Unresolved {
		if err := c.Unresolved[i].validate(); err != nil {
			return prefixed(index("unresolved", i), err)
		}
	}
	return nil
}
func (c CampaignRequested) campaign() string      { return c.CampaignID }
func (c CampaignRejected) campaign() string       { return c.CampaignID }
func (s SellerFound) campaign() string            { return s.CampaignID }
func (s SellerSkipped) campaign() string          { return s.CampaignID }
func (d DiscoveryCompleted) campaign() string     { return d.CampaignID }
func (p PackageFound) campaign() string           { return p.CampaignID }
func (q QuoteReady) campaign() string             { return q.CampaignID }
func (s ShoppingDeadlinePassed) campaign() string { return s.CampaignID }
func (p PortfolioProposed) campaign() string      { return p.CampaignID }
func (p PortfolioApproved) campaign() string      { return p.CampaignID }
func (l LineApproved) campaign() string           { return l.CampaignID }
func (d DealBooked) campaign() string             { return d.CampaignID }
func (f BookingFailed) campaign() string          { return f.CampaignID }
func (c CampaignCompleted) campaign() string      { return c.CampaignID }

// checkPayload checks a payload value of kind k for an event of campaign
// subject: the contract's rules (Validate) and its campaign_id. The error
// is a *SchemaError naming the field.
func checkPayload(k Kind, p payload, subject string) error {
	if err := p.Validate(); err != nil {
		if fe, ok := AsFieldError(err); ok {
			return &SchemaError{Kind: k.Name, Field: fe.Field, Detail: fe.Error()}
		}
		return &SchemaError{Kind: k.Name, Detail: err.Error()}
	}
	if id := p.campaign(); id != subject {
		return &SchemaError{Kind: k.Name, Field: "campaign_id", Detail: fmt.Sprintf("payload campaign_id %q differs from subject %q", id, subject)}
	}
	return nil
}
