package adcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (a *Agent) capabilities(_ context.Context, _ *principalCtx, _ json.RawMessage) result {
	modes := []string{"brief"}
	if a.cfg.Proposals {
		modes = append(modes, "refine")
	}
	rs := map[string]any{"supported": len(a.cfg.RequireSigningFor) > 0}
	if len(a.cfg.RequireSigningFor) > 0 {
		rs["supported_for"] = a.cfg.RequireSigningFor
		rs["required_for"] = a.cfg.RequireSigningFor
	}
	return result{body: map[string]any{
		"adcp": map[string]any{
			"major_versions":     []int{3},
			"supported_versions": []string{"3.1"},
			"build_version":      "3.1.19",
			"idempotency":        map[string]any{"supported": true, "replay_ttl_seconds": int(a.cfg.ReplayTTL / time.Second)},
		},
		"supported_protocols": []string{"media_buy"},
		"account":             map[string]any{"supported_billing": []string{"operator"}, "require_operator_auth": false, "sandbox": true},
		"media_buy": map[string]any{
			"supported_pricing_models": []string{"cpm"},
			"buying_modes":             modes,
			"supports_proposals":       a.cfg.Proposals,
		},
		"request_signing": rs,
	}}
}

// productsArgs is the part of get_products the sandbox reads.
type productsArgs struct {
	BuyingMode string `json:"buying_mode"`
	Brief      string `json:"brief"`
	Filters    *struct {
		DeliveryType string   `json:"delivery_type"`
		IsFixedPrice *bool    `json:"is_fixed_price"`
		Channels     []string `json:"channels"`
		FormatIDs    []struct {
			ID string `json:"id"`
		} `json:"format_ids"`
		BudgetRange *struct {
			Max *float64 `json:"max"`
		} `json:"budget_range"`
	} `json:"filters"`
	Pagination *struct {
		MaxResults int    `json:"max_results"`
		Cursor     string `json:"cursor"`
	} `json:"pagination"`
	Refine []struct {
		Scope      string `json:"scope"`
		ProductID  string `json:"product_id"`
		ProposalID string `json:"proposal_id"`
		Action     string `json:"action"`
		Ask        string `json:"ask"`
	} `json:"refine"`
}

func (a *Agent) getProducts(_ context.Context, p *principalCtx, raw json.RawMessage) result {
	var in productsArgs
	if err := json.Unmarshal(raw, &in); err != nil {
		return adcpErr("INVALID_REQUEST", "cannot read arguments: "+err.Error(), "")
	}
	priced := p.valid
	scope := "public"
	if priced {
		scope = "account"
	}
	switch in.BuyingMode {
	case "brief", "wholesale":
	case "refine":
		if !a.cfg.Proposals {
			return adcpErr("UNSUPPORTED_FEATURE", "refine is not supported by this agent", "buying_mode")
		}
		return a.refine(p, in, scope)
	default:
		return adcpErr("INVALID_REQUEST", "buying_mode must be brief, wholesale or refine", "buying_mode")
	}
	var ids []string
	for _, id := range a.order {
		if a.match(a.catalog[id], in) {
			ids = append(ids, id)
		}
	}
	size := a.cfg.MaxPageSize
	off := 0
	if in.Pagination != nil {
		if in.Pagination.MaxResults > 0 && in.Pagination.MaxResults < size {
			size = in.Pagination.MaxResults
		}
		if in.Pagination.Cursor != "" {
			n, err := strconv.Atoi(in.Pagination.Cursor)
			if err != nil || n < 0 || n > len(ids) {
				return adcpErr("INVALID_REQUEST", "unknown pagination cursor", "pagination.cursor")
			}
			off = n
		}
	}
	end := min(len(ids), off+size)
	products := make([]any, 0, end-off)
	for _, id := range ids[off:end] {
		products = append(products, a.productJSON(a.catalog[id], priced))
	}
	page := map[string]any{"has_more": end < len(ids), "total_count": len(ids)}
	if end < len(ids) {
		page["cursor"] = strconv.Itoa(end)
	}
	body := map[string]any{"products": products, "cache_scope": scope, "pagination": page, "sandbox": true}
	if a.cfg.Proposals && priced && off == 0 && len(ids) > 0 && in.BuyingMode == "brief" {
		a.mu.Lock()
		pr := &proposal{id: a.nextID("prop"), account: p.principal.AccountID, status: "draft", expires: a.cfg.Now().Add(a.cfg.ProposalHold)}
		n := min(3, len(ids))
		for i, id := range ids[:n] {
			share := math.Floor(100 / float64(n))
			if i == n-1 {
				share = 100 - share*float64(n-1)
			}
			pr.products = append(pr.products, id)
			pr.shares = append(pr.shares, share)
		}
		a.proposals[pr.id] = pr
		a.mu.Unlock()
		body["proposals"] = []any{a.proposalJSON(pr)}
	}
	return result{body: body}
}

func (a *Agent) match(p Product, in productsArgs) bool {
	f := in.Filters
	if f == nil {
		return true
	}
	if f.DeliveryType != "" && f.DeliveryType != p.DeliveryType {
		return false
	}
	if len(f.Channels) > 0 && !slices.Contains(f.Channels, p.Channel) {
		return false
	}
	if len(f.FormatIDs) > 0 {
		ok := false
		for _, fid := range f.FormatIDs {
			ok = ok || slices.Contains(p.Formats, fid.ID)
		}
		if !ok {
			return false
		}
	}
	if f.IsFixedPrice != nil || (f.BudgetRange != nil && f.BudgetRange.Max != nil) {
		ok := false
		for _, o := range p.Pricing {
			if f.IsFixedPrice != nil && *f.IsFixedPrice != (o.FixedPrice > 0) {
				continue
			}
			if f.BudgetRange != nil && f.BudgetRange.Max != nil && o.MinSpend > *f.BudgetRange.Max {
				continue
			}
			ok = true
		}
		return ok
	}
	return true
}

func (a *Agent) productJSON(p Product, priced bool) map[string]any {
	formats := make([]any, 0, len(p.Formats))
	for _, f := range p.Formats {
		formats = append(formats, map[string]any{"agent_url": CreativeAgent, "id": f})
	}
	opts := make([]any, 0, len(p.Pricing))
	for _, o := range p.Pricing {
		m := map[string]any{"pricing_option_id": o.ID, "pricing_model": "cpm", "currency": o.Currency}
		if priced {
			if o.FixedPrice > 0 {
				m["fixed_price"] = o.FixedPrice
			} else {
				m["floor_price"] = o.FloorPrice
				if g := o.Guidance; g != nil {
					m["price_guidance"] = map[string]any{"p25": g.P25, "p50": g.P50, "p75": g.P75, "p90": g.P90}
				}
			}
			if o.MinSpend > 0 {
				m["min_spend_per_package"] = o.MinSpend
			}
		}
		opts = append(opts, m)
	}
	metrics := []string{"impressions", "spend", "cpm"}
	if p.Channel != "display" {
		metrics = append(metrics, "completed_views", "completion_rate")
	}
	return map[string]any{
		"product_id": p.ID, "name": p.Name, "description": p.Description,
		"publisher_properties": []any{map[string]any{"selection_type": "all", "publisher_domain": p.PublisherDomain}},
		"channels":             []string{p.Channel},
		"format_ids":           formats,
		"delivery_type":        p.DeliveryType,
		"pricing_options":      opts,
		"reporting_capabilities": map[string]any{
			"available_reporting_frequencies": []string{"daily"}, "expected_delay_minutes": 240, "timezone": "UTC",
			"supports_webhooks": false, "available_metrics": metrics, "date_range_support": "date_range",
		},
	}
}

func (a *Agent) proposalJSON(pr *proposal) map[string]any {
	allocs := make([]any, 0, len(pr.products))
	for i, id := range pr.products {
		al := map[string]any{"product_id": id, "allocation_percentage": pr.shares[i]}
		if o := a.proposalOption(pr, i); o != nil {
			al["pricing_option_id"] = o.ID
		}
		allocs = append(allocs, al)
	}
	return map[string]any{
		"proposal_id": pr.id, "name": "Sandbox plan " + pr.id, "allocations": allocs,
		"proposal_status": pr.status, "expires_at": ts(pr.expires),
		"brief_alignment": "Spread across the best-matching products of the brief.",
	}
}

// proposalOption is the pricing option of a proposal's i-th product: the
// one its refine ask named, else the product's first.
func (a *Agent) proposalOption(pr *proposal, i int) *PricingOption {
	p := a.catalog[pr.products[i]]
	if len(p.Pricing) == 0 {
		return nil
	}
	if i < len(pr.options) && pr.options[i] != "" {
		for j := range p.Pricing {
			if p.Pricing[j].ID == pr.options[i] {
				return &p.Pricing[j]
			}
		}
	}
	return &p.Pricing[0]
}

func (a *Agent) refine(p *principalCtx, in productsArgs, scope string) result {
	if len(in.Refine) == 0 {
		return adcpErr("INVALID_REQUEST", "refine mode needs refine[]", "refine")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var applied, proposals, products []any
	seen := map[string]bool{}
	addProducts := func(ids ...string) {
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				products = append(products, a.productJSON(a.catalog[id], p.valid))
			}
		}
	}
	var included []string
	var asks []string
	for i, r := range in.Refine {
		field := fmt.Sprintf("refine[%d]", i)
		switch r.Scope {
		case "request":
			// No numeric counter-offer exists in AdCP 3.1: an ask is free text.
			applied = append(applied, map[string]any{"scope": "request", "status": "unable", "notes": "the sandbox does not renegotiate from free-text asks"})
		case "product":
			if _, ok := a.catalog[r.ProductID]; !ok {
				return adcpErr("PRODUCT_NOT_FOUND", "unknown product "+r.ProductID, field+".product_id")
			}
			if r.Action != "omit" && slices.Contains(a.cfg.RefuseProposals, r.ProductID) {
				return adcpErr("POLICY_VIOLATION", "the seller does not propose "+r.ProductID+" to this buyer", field+".product_id")
			}
			if r.Action != "omit" {
				addProducts(r.ProductID)
				if r.Action == "" || r.Action == "include" {
					included, asks = append(included, r.ProductID), append(asks, r.Ask)
				}
			}
			applied = append(applied, map[string]any{"scope": "product", "product_id": r.ProductID, "status": "applied"})
		case "proposal":
			pr, ok := a.proposals[r.ProposalID]
			if !ok || pr.account != p.principal.AccountID {
				return adcpErr("PROPOSAL_NOT_FOUND", "unknown proposal "+r.ProposalID, field+".proposal_id")
			}
			now := a.cfg.Now()
			if now.After(pr.expires) {
				return adcpErr("PROPOSAL_EXPIRED", "proposal "+pr.id+" expired", field+".proposal_id")
			}
			switch r.Action {
			case "omit":
				pr.omitted = true
			case "finalize":
				pr.status = "committed"
				pr.expires = now.Add(a.cfg.ProposalHold)
				fallthrough
			default:
				proposals = append(proposals, a.proposalJSON(pr))
				addProducts(pr.products...)
			}
			applied = append(applied, map[string]any{"scope": "proposal", "proposal_id": pr.id, "status": "applied"})
		default:
			return adcpErr("INVALID_REQUEST", "refine scope must be request, product or proposal", field+".scope")
		}
	}
	if len(proposals) == 0 && len(included) > 0 && p.valid {
		// A refine that includes products gets a draft proposal over
		// them (equal shares), each at the pricing option its ask names.
		pr := &proposal{id: a.nextID("prop"), account: p.principal.AccountID, status: "draft", expires: a.cfg.Now().Add(a.cfg.ProposalHold)}
		n := len(included)
		for i, id := range included {
			share := math.Floor(100 / float64(n))
			if i == n-1 {
				share = 100 - share*float64(n-1)
			}
			opt := ""
			for _, o := range a.catalog[id].Pricing {
				if strings.Contains(asks[i], o.ID) && len(o.ID) > len(opt) {
					opt = o.ID
				}
			}
			pr.products, pr.shares, pr.options = append(pr.products, id), append(pr.shares, share), append(pr.options, opt)
		}
		a.proposals[pr.id] = pr
		proposals = append(proposals, a.proposalJSON(pr))
	}
	body := map[string]any{"products": nonNil(products), "cache_scope": scope, "refinement_applied": applied, "sandbox": true}
	if len(proposals) > 0 {
		body["proposals"] = proposals
	}
	return result{body: body}
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

// buyArgs is the part of create_media_buy the sandbox reads.
type buyArgs struct {
	IdempotencyKey string          `json:"idempotency_key"`
	Account        json.RawMessage `json:"account"`
	Brand          *struct {
		Domain string `json:"domain"`
	} `json:"brand"`
	ProposalID  string `json:"proposal_id"`
	TotalBudget *struct {
		Amount   float64 `json:"amount"`
		Currency string  `json:"currency"`
	} `json:"total_budget"`
	Packages []struct {
		ProductID       string   `json:"product_id"`
		PricingOptionID string   `json:"pricing_option_id"`
		Budget          *float64 `json:"budget"`
		BidPrice        *float64 `json:"bid_price"`
		Impressions     float64  `json:"impressions"`
	} `json:"packages"`
	StartTime string         `json:"start_time"`
	EndTime   string         `json:"end_time"`
	Push      *pushConfig    `json:"push_notification_config"`
	Context   map[string]any `json:"context"`
}

func (a *Agent) createMediaBuy(_ context.Context, p *principalCtx, raw json.RawMessage) result {
	var in buyArgs
	if err := json.Unmarshal(raw, &in); err != nil {
		return adcpErr("INVALID_REQUEST", "cannot read arguments: "+err.Error(), "")
	}
	if len(in.IdempotencyKey) < 16 || len(in.IdempotencyKey) > 255 {
		return adcpErr("INVALID_REQUEST", "idempotency_key is required (16-255 characters)", "idempotency_key")
	}
	key := p.principal.AccountID + "\x00" + in.IdempotencyKey
	hash := canonicalHash(raw)
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.idem[key]; ok && now.Sub(e.at) < a.cfg.ReplayTTL {
		if e.hash != hash {
			return adcpErr("IDEMPOTENCY_CONFLICT", "idempotency_key was used with a different request", "idempotency_key")
		}
		body := map[string]any{}
		for k, v := range e.result {
			body[k] = v
		}
		body["replayed"] = true
		return result{body: body, isErr: e.isErr}
	}
	res := a.decideBuy(p, in, now)
	if !res.isErr || res.body["adcp_error"].(map[string]any)["recovery"] != "transient" {
		a.idem[key] = idemEntry{hash: hash, result: res.body, isErr: res.isErr, at: now}
	}
	return res
}

// decideBuy validates a create_media_buy and answers completed, submitted or
// an error. Called with a.mu held.
func (a *Agent) decideBuy(p *principalCtx, in buyArgs, now time.Time) result {
	if err := a.checkAccount(p, in.Account); err.isErr {
		return err
	}
	if in.Brand == nil || in.Brand.Domain == "" {
		return adcpErr("BRAND_REQUIRED", "brand.domain is required", "brand")
	}
	start, end := in.StartTime, in.EndTime
	et, err := time.Parse(time.RFC3339, end)
	if err != nil {
		return adcpErr("VALIDATION_ERROR", "end_time must be an RFC 3339 date-time", "end_time")
	}
	st := now
	if start != "asap" {
		if st, err = time.Parse(time.RFC3339, start); err != nil {
			return adcpErr("VALIDATION_ERROR", "start_time must be \"asap\" or an RFC 3339 date-time", "start_time")
		}
	}
	if !et.After(st) {
		return adcpErr("VALIDATION_ERROR", "end_time must be after start_time", "end_time")
	}
	buy := &mediaBuy{account: p.principal.AccountID, currency: "USD", start: ts(st), end: ts(et), created: now, revision: 1, context: in.Context}
	manual := false
	switch {
	case in.ProposalID != "":
		pr, ok := a.proposals[in.ProposalID]
		if !ok || pr.account != p.principal.AccountID || pr.omitted {
			return adcpErr("PROPOSAL_NOT_FOUND", "unknown proposal "+in.ProposalID, "proposal_id")
		}
		if pr.status != "committed" {
			return adcpErr("PROPOSAL_NOT_COMMITTED", "finalize the proposal (get_products refine, action finalize) before buying it", "proposal_id")
		}
		if now.After(pr.expires) {
			return adcpErr("PROPOSAL_EXPIRED", "the proposal's hold expired", "proposal_id")
		}
		if in.TotalBudget == nil || in.TotalBudget.Amount <= 0 {
			return adcpErr("VALIDATION_ERROR", "total_budget is required with proposal_id", "total_budget")
		}
		if in.TotalBudget.Currency != "USD" {
			return adcpErr("VALIDATION_ERROR", "only USD is sold", "total_budget.currency")
		}
		for i, id := range pr.products {
			prod := a.catalog[id]
			b := in.TotalBudget.Amount
			if pr.shares[i] != 100 {
				b = math.Round(in.TotalBudget.Amount*pr.shares[i]) / 100
			}
			buy.packages = append(buy.packages, pkg{ID: a.nextID("pkg"), ProductID: id, PricingOptionID: a.proposalOption(pr, i).ID, Budget: b})
			buy.total += b
			manual = manual || prod.ManualApproval
		}
	case len(in.Packages) > 0:
		for i, pk := range in.Packages {
			field := fmt.Sprintf("packages[%d]", i)
			prod, ok := a.catalog[pk.ProductID]
			if !ok {
				return adcpErr("PRODUCT_NOT_FOUND", "unknown product "+pk.ProductID, field+".product_id")
			}
			var opt *PricingOption
			for j := range prod.Pricing {
				if prod.Pricing[j].ID == pk.PricingOptionID {
					opt = &prod.Pricing[j]
				}
			}
			if opt == nil {
				return adcpErr("VALIDATION_ERROR", "unknown pricing option "+pk.PricingOptionID+" for "+prod.ID, field+".pricing_option_id")
			}
			if pk.Budget == nil || *pk.Budget <= 0 {
				return adcpErr("VALIDATION_ERROR", "budget must be positive", field+".budget")
			}
			if *pk.Budget < opt.MinSpend {
				return adcpErr("BUDGET_TOO_LOW", fmt.Sprintf("budget %.2f is below the minimum spend %.2f %s", *pk.Budget, opt.MinSpend, opt.Currency), field+".budget")
			}
			if opt.FixedPrice == 0 {
				if pk.BidPrice == nil {
					return adcpErr("VALIDATION_ERROR", "auction pricing needs bid_price", field+".bid_price")
				}
				if *pk.BidPrice < opt.FloorPrice {
					return adcpErr("VALIDATION_ERROR", fmt.Sprintf("bid_price %.2f is below the floor %.2f", *pk.BidPrice, opt.FloorPrice), field+".bid_price")
				}
			}
			buy.packages = append(buy.packages, pkg{ID: a.nextID("pkg"), ProductID: prod.ID, PricingOptionID: opt.ID, Budget: *pk.Budget, BidPrice: pk.BidPrice, Impressions: pk.Impressions})
			buy.total += *pk.Budget
			manual = manual || prod.ManualApproval
		}
	default:
		return adcpErr("INVALID_REQUEST", "packages or proposal_id is required", "packages")
	}
	if manual {
		t := &task{id: a.nextID("task"), account: buy.account, status: "submitted", created: now, updated: now, push: in.Push, pending: buy}
		a.tasks[t.id] = t
		if !a.closed {
			a.timers = append(a.timers, time.AfterFunc(a.cfg.ApprovalDelay, func() { a.decide(t.id) }))
		}
		return result{body: map[string]any{"status": "submitted", "task_id": t.id, "message": "the buy awaits the seller's human approval"}}
	}
	a.confirm(buy, now)
	return result{body: a.buyResult(buy)}
}

func (a *Agent) checkAccount(p *principalCtx, raw json.RawMessage) result {
	var ref struct {
		AccountID string `json:"account_id"`
		Operator  string `json:"operator"`
		Brand     *struct {
			Domain string `json:"domain"`
		} `json:"brand"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &ref) != nil {
		return adcpErr("ACCOUNT_NOT_FOUND", "account is required", "account")
	}
	pr := p.principal
	switch {
	case ref.AccountID != "" && ref.AccountID == pr.AccountID:
	case ref.AccountID == "" && ref.Brand != nil && ref.Brand.Domain == pr.BrandDomain && ref.Operator == pr.Operator && pr.Operator != "":
	default:
		return adcpErr("ACCOUNT_NOT_FOUND", "the account is not one these credentials may buy for", "account")
	}
	return result{}
}

// confirm stores a buy as booked. Called with a.mu held.
func (a *Agent) confirm(b *mediaBuy, now time.Time) {
	b.id = a.nextID("mb")
	b.status = "pending_start"
	b.confirmed = now
	a.buys[b.id] = b
	a.buyOrder = append(a.buyOrder, b.id)
}

func (a *Agent) packagesJSON(b *mediaBuy, withCurrency bool) []any {
	out := make([]any, 0, len(b.packages))
	for _, p := range b.packages {
		m := map[string]any{"package_id": p.ID, "product_id": p.ProductID, "pricing_option_id": p.PricingOptionID, "budget": p.Budget}
		if p.course.Paused {
			m["paused"] = true
		}
		if p.course.Cancelled {
			m["canceled"] = true
		}
		if p.BidPrice != nil {
			m["bid_price"] = *p.BidPrice
		}
		if p.Impressions > 0 {
			m["impressions"] = p.Impressions
		}
		if withCurrency {
			delete(m, "pricing_option_id")
			m["currency"] = b.currency
		}
		out = append(out, m)
	}
	return out
}

func (a *Agent) buyResult(b *mediaBuy) map[string]any {
	return map[string]any{
		"status": "completed", "media_buy_id": b.id, "media_buy_status": b.status,
		"confirmed_at": ts(b.confirmed), "revision": b.revision, "currency": b.currency, "total_budget": b.total,
		"packages": a.packagesJSON(b, false), "sandbox": true,
	}
}

func (t *task) taskType() string {
	if t.kind != "" {
		return t.kind
	}
	return "create_media_buy"
}

// decide ends a submitted task (timer goroutine).
func (a *Agent) decide(taskID string) {
	a.mu.Lock()
	t := a.tasks[taskID]
	if t == nil || t.status != "submitted" || a.closed {
		a.mu.Unlock()
		return
	}
	now := a.cfg.Now()
	t.updated, t.completed = now, now
	if a.cfg.RejectSubmitted {
		t.status = "rejected"
		t.errCode, t.errMsg = "TERMS_REJECTED", "the seller's trafficker rejected the buy"
	} else if t.update != nil {
		t.updateReply = t.update(now)
		t.status = "completed"
	} else {
		a.confirm(t.pending, now)
		t.status = "completed"
		t.buy = t.pending
	}
	push := t.push
	var payload []byte
	if push != nil && push.URL != "" {
		op := push.OperationID
		if op == "" {
			op = t.id
		}
		wh := map[string]any{
			"idempotency_key": "whk." + t.id + "." + t.status, "notification_id": "ntf." + t.id,
			"operation_id": op, "task_id": t.id, "task_type": t.taskType(), "protocol": "media-buy",
			"status": t.status, "timestamp": ts(now),
		}
		if push.Token != "" {
			wh["token"] = push.Token
		}
		if r := a.taskResult(t); r != nil {
			wh["result"] = r
		}
		if t.errMsg != "" {
			wh["message"] = t.errCode + ": " + t.errMsg
		}
		payload, _ = json.Marshal(wh)
		a.wg.Add(1)
	}
	a.mu.Unlock()
	if payload != nil {
		go func() {
			defer a.wg.Done()
			a.sendWebhook(push, payload)
		}()
	}
}

func (a *Agent) sendWebhook(push *pushConfig, payload []byte) {
	w := Webhook{URL: push.URL, Payload: payload}
	req, err := http.NewRequest(http.MethodPost, push.URL, bytes.NewReader(payload))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		if push.Auth != nil && len(push.Auth.Schemes) == 1 && push.Auth.Schemes[0] == "Bearer" {
			req.Header.Set("Authorization", "Bearer "+push.Auth.Credentials)
		}
		var resp *http.Response
		if resp, err = a.cfg.WebhookClient.Do(req); err == nil {
			w.Status = resp.StatusCode
			_ = resp.Body.Close()
		}
	}
	if err != nil {
		w.Err = err.Error()
	}
	a.mu.Lock()
	a.webhooks = append(a.webhooks, w)
	a.mu.Unlock()
}

// taskResult is the create-media-buy response a finished task carries.
func (a *Agent) taskResult(t *task) map[string]any {
	switch {
	case t.updateReply != nil:
		return t.updateReply
	case t.buy != nil:
		return a.buyResult(t.buy)
	case t.errCode != "":
		e := map[string]any{"code": t.errCode, "message": t.errMsg, "recovery": "correctable"}
		return map[string]any{"status": "rejected", "errors": []any{e}}
	}
	return nil
}

func (a *Agent) taskStatus(_ context.Context, p *principalCtx, raw json.RawMessage) result {
	var in struct {
		TaskID        string `json:"task_id"`
		IncludeResult bool   `json:"include_result"`
	}
	if err := json.Unmarshal(raw, &in); err != nil || in.TaskID == "" {
		return adcpErr("INVALID_REQUEST", "task_id is required", "task_id")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tasks[in.TaskID]
	if t == nil || t.account != p.principal.AccountID {
		return adcpErr("REFERENCE_NOT_FOUND", "unknown task "+in.TaskID, "task_id")
	}
	body := map[string]any{
		"task_id": t.id, "task_type": t.taskType(), "protocol": "media-buy", "status": t.status,
		"created_at": ts(t.created), "updated_at": ts(t.updated), "has_webhook": t.push != nil && t.push.URL != "",
	}
	if !t.completed.IsZero() {
		body["completed_at"] = ts(t.completed)
	}
	if t.errCode != "" {
		body["error"] = map[string]any{"code": t.errCode, "message": t.errMsg}
	}
	if in.IncludeResult {
		if r := a.taskResult(t); r != nil {
			body["result"] = r
		}
	}
	return result{body: body}
}

func (a *Agent) getMediaBuys(_ context.Context, p *principalCtx, raw json.RawMessage) result {
	var in struct {
		MediaBuyIDs  []string        `json:"media_buy_ids"`
		StatusFilter json.RawMessage `json:"status_filter"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return adcpErr("INVALID_REQUEST", "cannot read arguments", "")
	}
	// Without ids the spec lists only active buys unless a status filter
	// says otherwise.
	var statuses []string
	if len(in.StatusFilter) > 0 {
		var one string
		if json.Unmarshal(in.StatusFilter, &one) == nil {
			statuses = []string{one}
		} else if json.Unmarshal(in.StatusFilter, &statuses) != nil {
			return adcpErr("INVALID_REQUEST", "status_filter must be a status or a list of statuses", "status_filter")
		}
	} else if len(in.MediaBuyIDs) == 0 {
		statuses = []string{"active"}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	buys := []any{}
	for _, id := range a.buyOrder {
		b := a.buys[id]
		if b.account != p.principal.AccountID || (len(in.MediaBuyIDs) > 0 && !slices.Contains(in.MediaBuyIDs, id)) ||
			(statuses != nil && !slices.Contains(statuses, b.status)) {
			continue
		}
		buy := map[string]any{
			"media_buy_id": b.id, "status": b.status, "currency": b.currency, "total_budget": b.total,
			"start_time": b.start, "end_time": b.end, "confirmed_at": ts(b.confirmed), "revision": b.revision,
			"created_at": ts(b.created), "updated_at": ts(b.confirmed), "packages": a.packagesJSON(b, true),
		}
		if b.context != nil && !a.cfg.NoContextEcho {
			buy["context"] = b.context
		}
		buys = append(buys, buy)
	}
	return result{body: map[string]any{"media_buys": buys, "sandbox": true}}
}
