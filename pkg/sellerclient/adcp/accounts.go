package adcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// Operations on accounts (RequiresSigning and SkipReason take them too).
const (
	OpListAccounts = "list_accounts"
	OpSyncAccounts = "sync_accounts"
)

// ErrAccount means the account the credentials name is not usable at the
// seller: list_accounts does not show it (and sync_accounts, where the
// seller provisions buyer-declared accounts, refused it), or it is not
// active. The *Error carries Code "account_not_found" or "account_inactive"
// and Field, the AccountReference field at fault ("account.account_id", or
// "account.brand" + "account.operator" as "account.operator").
var ErrAccount = errors.New("adcp: account not usable at the seller")

// Account is core/account.json, the part the buyer checks.
type Account struct {
	AccountID string    `json:"account_id"`
	Name      string    `json:"name,omitempty"`
	Status    string    `json:"status,omitempty"`
	Brand     *BrandRef `json:"brand,omitempty"`
	Operator  string    `json:"operator,omitempty"`
	Sandbox   bool      `json:"sandbox,omitempty"`
}

// AccountCheck is how ResolveAccount found the seller's account.
type AccountCheck struct {
	// Account is the seller's account record (nil when Checked is false).
	Account *Account
	// How: "list_accounts", "sync_accounts" (provisioned or confirmed by
	// the seller) or "unchecked" (the seller lists neither tool).
	How string
}

// String says how the account was resolved.
func (a *AccountCheck) String() string {
	if a == nil || a.Account == nil {
		return "account not checked (the seller lists neither list_accounts nor sync_accounts)"
	}
	return fmt.Sprintf("account %s (%s) resolved with %s", a.Account.AccountID, a.Account.Status, a.How)
}

// Matches reports whether acc is the account ref names: the same
// account_id, or the same brand domain, operator and sandbox flag.
func (ref AccountRef) Matches(acc Account) bool {
	if ref.AccountID != "" {
		return acc.AccountID == ref.AccountID
	}
	return ref.Brand != nil && acc.Brand != nil && strings.EqualFold(acc.Brand.Domain, ref.Brand.Domain) &&
		strings.EqualFold(acc.Operator, ref.Operator) && acc.Sandbox == ref.Sandbox
}

// field is the AccountReference field a resolution failure is about.
func (ref AccountRef) field() string {
	if ref.AccountID != "" {
		return "account.account_id"
	}
	return "account.operator"
}

// describe names the reference without secrets.
func (ref AccountRef) describe() string {
	if ref.AccountID != "" {
		return "account_id " + ref.AccountID
	}
	b := ""
	if ref.Brand != nil {
		b = ref.Brand.Domain
	}
	return "brand " + b + " + operator " + ref.Operator
}

// Tools lists the seller's MCP tools (tools/list, every page), cached per
// seller and token like the capabilities.
func (c *Client) Tools(ctx context.Context, s Seller) (map[string]bool, error) {
	u, _ := sellerclient.CanonicalURL(s.URL)
	key := sellerKey(u, s.Token)
	c.mu.Lock()
	if e, ok := c.tools[key]; ok && c.cfg.Now().Sub(e.at) < c.cfg.CapabilitiesTTL {
		c.mu.Unlock()
		return e.tools, nil
	}
	c.mu.Unlock()
	var have map[string]bool
	err := c.run(ctx, "tools/list", s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		var err error
		have, err = listTools(ctx, sess, tr)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tools[key] = toolsEntry{tools: have, at: c.cfg.Now()}
	c.mu.Unlock()
	return have, nil
}

func listTools(ctx context.Context, sess *mcp.ClientSession, tr *tracker) (map[string]bool, error) {
	have := map[string]bool{}
	cursor := ""
	for range 20 {
		res, err := sess.ListTools(ctx, &mcp.ListToolsParams{Cursor: cursor})
		if err != nil {
			return nil, transportError(ctx, err, tr)
		}
		for _, t := range res.Tools {
			have[t.Name] = true
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	return have, nil
}

// ListAccounts calls list_accounts (every page, at most MaxPages) and
// returns the accounts the authenticated agent may use. filter, when set,
// is sent as the exact account filter; sellers may ignore it, so callers
// match the answer themselves (AccountRef.Matches).
func (c *Client) ListAccounts(ctx context.Context, s Seller, filter *AccountRef) ([]Account, error) {
	var out []Account
	err := c.run(ctx, OpListAccounts, s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		out = out[:0]
		cursor := ""
		seen := map[string]bool{}
		for range DefaultMaxPages {
			req := map[string]any{"pagination": pagination{MaxResults: 100, Cursor: cursor}}
			if filter != nil {
				req["account"] = filter
			}
			args, err := json.Marshal(req)
			if err != nil {
				return validationError("cannot encode request: " + err.Error())
			}
			raw, err := callTool(ctx, sess, tr, OpListAccounts, args)
			if err != nil {
				return err
			}
			var w struct {
				Accounts   []Account `json:"accounts"`
				Pagination *struct {
					HasMore bool   `json:"has_more"`
					Cursor  string `json:"cursor"`
				} `json:"pagination"`
			}
			if err := json.Unmarshal(raw, &w); err != nil {
				return badResponse("list_accounts: "+err.Error(), err)
			}
			out = append(out, w.Accounts...)
			if w.Pagination == nil || !w.Pagination.HasMore || w.Pagination.Cursor == "" || seen[w.Pagination.Cursor] {
				return nil
			}
			seen[w.Pagination.Cursor] = true
			cursor = w.Pagination.Cursor
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SyncResult is one sync_accounts result row.
type SyncResult struct {
	AccountID string `json:"account_id"`
	Action    string `json:"action"`
	Status    string `json:"status"`
	Errors    []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

// SyncAccount provisions (or confirms) a buyer-declared account by its
// natural key with sync_accounts: brand + operator + billing. The key is
// derived from the seller and the account, so a retry replays.
func (c *Client) SyncAccount(ctx context.Context, s Seller, ref AccountRef, billing string) (*SyncResult, error) {
	if ref.Brand == nil || ref.Brand.Domain == "" || ref.Operator == "" {
		return nil, validationError("sync_accounts needs brand + operator")
	}
	if billing == "" {
		billing = "operator"
	}
	entry := map[string]any{"brand": ref.Brand, "operator": ref.Operator, "billing": billing}
	if ref.Sandbox {
		entry["sandbox"] = true
	}
	args, err := json.Marshal(map[string]any{
		"idempotency_key": IdempotencyKey("sync_accounts", s.URL, ref.Brand.Domain, ref.Operator, billing),
		"accounts":        []any{entry},
	})
	if err != nil {
		return nil, validationError("cannot encode request: " + err.Error())
	}
	var row *SyncResult
	err = c.run(ctx, OpSyncAccounts, s, func(ctx context.Context, sess *mcp.ClientSession, tr *tracker) error {
		raw, err := callTool(ctx, sess, tr, OpSyncAccounts, args)
		if err != nil {
			return err
		}
		var w struct {
			Accounts []SyncResult `json:"accounts"`
		}
		if err := json.Unmarshal(raw, &w); err != nil {
			return badResponse("sync_accounts: "+err.Error(), err)
		}
		if len(w.Accounts) != 1 {
			return badResponse(fmt.Sprintf("sync_accounts: %d result rows for one account", len(w.Accounts)), nil)
		}
		row = &w.Accounts[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return row, nil
}

// ResolveAccount checks, before shopping, that the account s.Account names
// exists and is active at the seller, as AdCP 3.1 asks of a buyer:
// list_accounts (every account the credential may use) must show it; a
// buyer-declared account (brand + operator) that is not listed is
// provisioned with sync_accounts where the seller takes buyer-declared
// accounts (account.require_operator_auth false) and lists that tool. A
// seller that lists neither tool cannot be asked: the answer is
// "unchecked". Failures are *Error wrapping ErrAccount with the field at
// fault; transport failures are returned as they are. Answers are cached
// per seller and token for Config.CapabilitiesTTL.
func (c *Client) ResolveAccount(ctx context.Context, s Seller, caps *Capabilities) (*AccountCheck, error) {
	if s.Account == nil || *s.Account == (AccountRef{}) {
		e := clientError("account_not_found", "the credentials name no account (account_id, or brand + operator)", ErrAccount, sellerclient.ErrValidation)
		e.Op, e.Seller, e.Field = OpListAccounts, s.URL, "account"
		return nil, e
	}
	ref := *s.Account
	u, _ := sellerclient.CanonicalURL(s.URL)
	ck := sellerKey(u, s.Token) + "#" + ref.describe()
	c.mu.Lock()
	if e, ok := c.accounts[ck]; ok && c.cfg.Now().Sub(e.at) < c.cfg.CapabilitiesTTL {
		c.mu.Unlock()
		return e.check, nil
	}
	c.mu.Unlock()
	check, err := c.resolveAccount(ctx, s, ref, caps)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.accounts[ck] = accountEntry{check: check, at: c.cfg.Now()}
	c.mu.Unlock()
	return check, nil
}

func (c *Client) resolveAccount(ctx context.Context, s Seller, ref AccountRef, caps *Capabilities) (*AccountCheck, error) {
	fail := func(code, msg string, kinds ...error) *Error {
		e := clientError(code, msg, append([]error{ErrAccount}, kinds...)...)
		e.Op, e.Seller, e.Field = OpListAccounts, s.URL, ref.field()
		return e
	}
	tools, err := c.Tools(ctx, s)
	if err != nil {
		return nil, err
	}
	listed := ""
	if tools[OpListAccounts] {
		accts, err := c.ListAccounts(ctx, s, &ref)
		if err != nil {
			return nil, err
		}
		for i := range accts {
			if ref.Matches(accts[i]) {
				if st := accts[i].Status; st != "" && st != "active" {
					return nil, fail("account_inactive", fmt.Sprintf("the seller's account %s for %s is %s, not active", accts[i].AccountID, ref.describe(), st), sellerclient.ErrForbidden)
				}
				return &AccountCheck{Account: &accts[i], How: OpListAccounts}, nil
			}
		}
		listed = fmt.Sprintf("list_accounts shows %d accounts, none for %s", len(accts), ref.describe())
	}
	buyerDeclared := caps == nil || caps.Account == nil || !caps.Account.RequireOperatorAuth
	if ref.AccountID == "" && buyerDeclared && tools[OpSyncAccounts] {
		billing := "operator"
		if caps != nil && caps.Account != nil && len(caps.Account.SupportedBilling) > 0 {
			billing = caps.Account.SupportedBilling[0]
		}
		row, err := c.SyncAccount(ctx, s, ref, billing)
		if err != nil {
			var ae *Error
			if errors.As(err, &ae) && !ae.Retryable && ae.HTTPStatus == 0 {
				return nil, fail("account_not_found", strings.TrimPrefix(listed+"; ", "; ")+"sync_accounts refused "+ref.describe()+": "+ae.Code+" "+ae.Message, sellerclient.ErrNotFound)
			}
			return nil, err
		}
		if row.Action == "failed" || row.Status != "active" {
			why := row.Status
			for _, e := range row.Errors {
				why += "; " + e.Code + " " + truncate(e.Message, 300)
			}
			return nil, fail("account_not_found", strings.TrimPrefix(listed+"; ", "; ")+"sync_accounts did not provision "+ref.describe()+" (action "+row.Action+", status "+why+")", sellerclient.ErrNotFound)
		}
		acc := &Account{AccountID: row.AccountID, Status: row.Status, Brand: ref.Brand, Operator: ref.Operator, Sandbox: ref.Sandbox}
		return &AccountCheck{Account: acc, How: OpSyncAccounts}, nil
	}
	if listed != "" {
		if ref.AccountID == "" && !buyerDeclared {
			listed += " (the seller requires operator-authorized accounts: name its account_id)"
		}
		return nil, fail("account_not_found", listed, sellerclient.ErrNotFound)
	}
	return &AccountCheck{How: "unchecked"}, nil
}

type toolsEntry struct {
	tools map[string]bool
	at    time.Time
}

type accountEntry struct {
	check *AccountCheck
	at    time.Time
}
