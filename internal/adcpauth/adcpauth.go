// Package adcpauth turns the buyer's credentials into the AdCP seller and
// identity a stage calls with (kept out of pkg/identity so that package does
// not depend on the AdCP client).
package adcpauth

import (
	"fmt"

	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

// Seller is the AdCP seller and identity to use at tier t: public is no
// token, no account and no brand (get_products may then carry no prices);
// a higher tier is the seller's token (its tier key or bearer_token) with
// the account its credentials name, as AdCP's AccountReference: the
// account_id ("account"), else the natural key brand + operator ("brand",
// "operator"), and the brand. Calls go to the seller's MCP endpoint. The
// token never prints.
func Seller(c *identity.Credentials, sel events.Seller, t events.Tier) (adcp.Seller, error) {
	s := adcp.Seller{URL: sel.Endpoint()}
	if t == identity.TierPublic || t == "" {
		return s, nil
	}
	id, ok := c.ADCP(sel.URL, t)
	if !ok {
		return s, fmt.Errorf("no %s credential (bearer token) for AdCP seller %s", t, sel.URL)
	}
	s.Token = adcp.Secret(id.Token)
	switch {
	case id.Account != "":
		s.Account = &adcp.AccountRef{AccountID: id.Account}
	case id.Operator != "" && id.Brand != "":
		s.Account = &adcp.AccountRef{Brand: &adcp.BrandRef{Domain: id.Brand}, Operator: id.Operator}
	}
	if id.Brand != "" {
		s.Brand = &adcp.BrandRef{Domain: id.Brand}
	}
	return s, nil
}

// CredentialsField names the credentials-file field(s) behind an
// AccountReference field of an adcp.Error (Field), for skip reasons an
// operator can act on: "account.account_id" is the entry's "account",
// the natural key's fields are its "brand" and "operator".
func CredentialsField(refField string) string {
	switch refField {
	case "account.account_id":
		return `"` + identity.FieldAccount + `" (the seller's account_id)`
	case "account.operator", "account.brand":
		return `"` + identity.FieldBrand + `" + "` + identity.FieldOperator + `" (the account's natural key)`
	}
	return `"` + identity.FieldAccount + `", or "` + identity.FieldBrand + `" + "` + identity.FieldOperator + `"`
}
