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
func checkCampaignID(field, id string) error {
	if ValidateCampaignID(id) != nil {
		return &FieldError{Field: field, Reason: campaignIDReason}
	}
	return nil
}

// checkEnum refuses a value outside values; optional allows the empty
// value, which encoding/json leaves out (omitempty) and so the schema
// never sees.
func checkEnum[T ~string](field string, v T, values []T, optional bool) error {
	if (optional && v == "") || slices.Contains(values, v) {
		return nil
	}
	names := make([]string, len(values))
	for i, x := range values {
		names[i] = string(x)
	}
	return &FieldError{Field: field, Reason: "must be one of " + strings.Join(names, ", ")}
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

func at(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func (s Seller) validate(prefix string) error {
	return join(checkEnum(at(prefix, "trust"), s.Trust, Trusts, false),
		checkEnum(at(prefix, "protocol"), s.Protocol, Protocols, true))
}

func (d Disclosure) validate(prefix string) error {
	return join(checkEnum(at(prefix, "tier"), d.Tier, Tiers, false),
		checkEnum(at(prefix, "recommended"), d.Recommended, Tiers, false),
		checkEnum(at(prefix, "cap"), d.Cap, Tiers, false))
}

func (l PlanLine) validate(prefix string) error {
	return join(checkEnum(at(prefix, "protocol"), l.Protocol, Protocols, true),
		checkEnum(at(prefix, "tier"), l.Tier, Tiers, true))
}

func validateLines(field string, lines []PlanLine) error {
	for i := range lines {
		if err := lines[i].validate(index(field, i)); err != nil {
			return err
		}
	}
	return nil
}

func (d DealBooked) validate(prefix string) error {
	return join(checkCampaignID(at(prefix, "campaign_id"), d.CampaignID),
		checkEnum(at(prefix, "protocol"), d.Protocol, Protocols, true),
		checkEnum(at(prefix, "tier"), d.Tier, Tiers, false))
}

func (f BookingFailed) validate(prefix string) error {
	return join(checkCampaignID(at(prefix, "campaign_id"), f.CampaignID),
		checkEnum(at(prefix, "protocol"), f.Protocol, Protocols, true))
}

// Validate checks the request against the contract: its campaign id. The
// brief's limits are ValidateAt's.
func (c CampaignRequested) Validate() error { return checkCampaignID("campaign_id", c.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (c CampaignRejected) Validate() error { return checkCampaignID("campaign_id", c.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (s SellerFound) Validate() error {
	return join(checkCampaignID("campaign_id", s.CampaignID), s.Seller.validate("seller"), s.Disclosure.validate("disclosure"))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (s SellerSkipped) Validate() error {
	return join(checkCampaignID("campaign_id", s.CampaignID),
		checkEnum("protocol", s.Protocol, Protocols, true),
		checkEnum("trust", s.Trust, Trusts, true))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DiscoveryCompleted) Validate() error { return checkCampaignID("campaign_id", d.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p PackageFound) Validate() error {
	return join(checkCampaignID("campaign_id", p.CampaignID), p.Seller.validate("seller"), p.Disclosure.validate("disclosure"))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (q QuoteReady) Validate() error {
	return join(checkCampaignID("campaign_id", q.CampaignID), q.Seller.validate("seller"),
		checkEnum("tier", q.Tier, Tiers, false))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (s ShoppingDeadlinePassed) Validate() error { return checkCampaignID("campaign_id", s.CampaignID) }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p PortfolioProposed) Validate() error {
	return join(checkCampaignID("campaign_id", p.CampaignID), validateLines("lines", p.Lines))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (p PortfolioApproved) Validate() error {
	return join(checkCampaignID("campaign_id", p.CampaignID), validateLines("lines", p.Lines))
}

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (d DealBooked) Validate() error { return d.validate("") }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (f BookingFailed) Validate() error { return f.validate("") }

// Validate checks the payload against the contract (its kind's schema); the
// error is a *FieldError naming the field.
func (c CampaignCompleted) Validate() error {
	if err := join(checkCampaignID("campaign_id", c.CampaignID), checkEnum("status", c.Status, CampaignStatuses, false)); err != nil {
		return err
	}
	for i := range c.Deals {
		if err := c.Deals[i].validate(index("deals", i)); err != nil {
			return err
		}
	}
	for i := range c.Failed {
		if err := c.Failed[i].validate(index("failed", i)); err != nil {
			return err
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
