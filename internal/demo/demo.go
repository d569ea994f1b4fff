// Package demo runs the embedded default end to end: an in-process NATS
// server, the sandbox registry and sellers, all four stages, one sample
// CTV/video campaign, its progress as it happens and the booked deals.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/internal/cluster"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/sandbox"
	_ "github.com/dealflow/dealflow/internal/sandbox/adcp" // the market's AdCP sales agents
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/services/activator"
)

// dspSecret signs the demo's activations for its own sandbox DSP, which
// lives and dies with the demo.
const dspSecret = "dealflow-demo-sandbox-dsp-secret"

// Options configure a demo run.
type Options struct {
	JSON     bool
	Strategy string
	DataDir  string
	Timeout  time.Duration
	// Market replaces the default sandbox market.
	Market *sandbox.MarketConfig
	// AutoApprove false leaves approval to the caller (tests use the API).
	Log zerolog.Logger
	// Cluster > 1 runs the demo on an in-process JetStream cluster of that
	// many nodes started from deploy/nats/cluster.conf, with every stream
	// and bucket at min(Cluster, 3) replicas.
	Cluster int
	// KillLeader (with Cluster) kills the event stream's leader node after
	// the first negotiation ends (the first QuoteReady).
	KillLeader bool
	// MetricsAddr, when set, serves the pipeline's /metrics there
	// (--metrics-addr; off by default for the demo).
	MetricsAddr string
	// Inspect, when set, is called with the sandbox market after the
	// campaign ended and before the market closes (tests ask the sellers).
	Inspect func(ctx context.Context, m *sandbox.Market, r Result) error
	// Flight follows the booked lines for their whole flight on an
	// accelerated clock (one flight day per TimeScale, default 500ms),
	// read every PacingEvery of flight time (default 12h), until every
	// line's final snapshot (demo --flight).
	Flight      bool
	TimeScale   time.Duration
	PacingEvery time.Duration
}

// Result is what `dealflow demo --json` prints.
type Result struct {
	CampaignID       string                 `json:"campaign_id"`
	Status           events.CampaignStatus  `json:"status"`
	Budget           float64                `json:"budget"`
	BudgetMicros     events.Micros          `json:"budget_micros"`
	TotalSpend       float64                `json:"total_spend"`
	TotalSpendMicros events.Micros          `json:"total_spend_micros"`
	Deals            []Deal                 `json:"deals"`
	SkippedSellers   []Skipped              `json:"skipped_sellers"`
	Negotiations     []Negotiation          `json:"negotiations"`
	Disclosures      []Disclosure           `json:"disclosures"`
	Failed           []events.BookingFailed `json:"failed,omitempty"`
	// Cluster describes the cluster run (demo --cluster).
	Cluster *ClusterInfo `json:"cluster,omitempty"`
	// Flight describes the accelerated flight that followed the booking
	// (demo --flight); each deal then has its delivery.
	Flight *FlightInfo `json:"flight,omitempty"`
	// Activations are the booked deals' activations in the DSP and
	// Reallocations the flight's reallocations (demo --flight).
	Activations   []Activation   `json:"activations,omitempty"`
	Reallocations []Reallocation `json:"reallocations,omitempty"`
	// Plan is the last proposed portfolio's lines (not in the JSON).
	Plan []events.PlanLine `json:"-"`

	// delivery is each line's last snapshot, by line key (demo --flight);
	// lines each booked line's seller; maxCommitted the highest committed
	// spend a LineChanged reported.
	delivery     map[string]*Delivery
	lines        map[string][2]string
	maxCommitted events.Micros
	// newLines are the lines a reallocation's add booked (LineChanged
	// action add): marked NewLine whenever their deal is listed.
	newLines map[string]bool
}

// ClusterInfo is the cluster part of the demo output: the node killed
// (with --kill-leader) and the node that took over leading the stream.
type ClusterInfo struct {
	Nodes     int    `json:"nodes"`
	Killed    string `json:"killed,omitempty"`
	NewLeader string `json:"new_leader,omitempty"`
}

// Skipped is a seller left out, in the demo output.
type Skipped struct {
	SellerURL  string `json:"seller_url"`
	SellerName string `json:"seller_name,omitempty"`
	Reason     string `json:"reason"`
}

// Deal is one booked deal in the demo output.
type Deal struct {
	SellerURL  string `json:"seller_url"`
	SellerName string `json:"seller_name"`
	PackageID  string `json:"package_id"`
	Protocol   string `json:"protocol" desc:"iab-seller-agent or adcp"`
	DealID     string `json:"deal_id"`
	// AdCP: the media buy, the seller's package in it and its revision.
	MediaBuyID      string        `json:"media_buy_id,omitempty"`
	SellerPackageID string        `json:"seller_package_id,omitempty"`
	Revision        int           `json:"revision,omitempty"`
	CPM             float64       `json:"cpm"`
	CPMMicros       events.Micros `json:"cpm_micros"`
	Impressions     int64         `json:"impressions"`
	Spend           float64       `json:"spend"`
	SpendMicros     events.Micros `json:"spend_micros"`
	// LineKey is the booked line (DealBooked.line_key).
	LineKey string `json:"line_key,omitempty"`
	// NewLine: a remaining quote a reallocation booked as a new line
	// during the flight (after the campaign completed).
	NewLine bool `json:"new_line,omitempty"`
	// Delivery is what the line delivered over the flight (demo --flight).
	Delivery *Delivery `json:"delivery,omitempty"`
}

// Negotiation is one package's negotiation in the demo output.
type Negotiation struct {
	SellerURL      string        `json:"seller_url"`
	SellerName     string        `json:"seller_name"`
	PackageID      string        `json:"package_id"`
	Strategy       string        `json:"strategy"`
	Outcome        string        `json:"outcome"`
	Rounds         int           `json:"rounds"`
	ListCPM        float64       `json:"list_cpm"`
	ListCPMMicros  events.Micros `json:"list_cpm_micros"`
	FinalCPM       float64       `json:"final_cpm"`
	FinalCPMMicros events.Micros `json:"final_cpm_micros"`
	Tier           string        `json:"tier"`
}

// Disclosure says which identity tier a seller saw and why.
type Disclosure struct {
	SellerURL  string `json:"seller_url"`
	SellerName string `json:"seller_name"`
	Protocol   string `json:"protocol"`
	Trust      string `json:"trust"`
	Tier       string `json:"tier"`
	Reason     string `json:"reason"`
}

// SampleCampaign is the demo's CTV/video campaign.
func SampleCampaign(id, strategy string) events.CampaignRequested {
	start := time.Now().UTC().AddDate(0, 0, 14)
	return events.CampaignRequested{
		CampaignID: id,
		Brief: events.Brief{
			Name: "Spring launch - CTV and video", Objectives: []string{"awareness", "reach"}, BudgetMicros: 50_000_000_000, Currency: "USD",
			StartDate: start.Format(events.DateLayout), EndDate: start.AddDate(0, 0, 30).Format(events.DateLayout),
			TargetAudience: map[string]any{"age": "25-54", "geo": "US"},
			KPIs:           events.KPIs{TargetCPMMicros: 18_000_000, MaxCPMMicros: 32_000_000},
			Channels:       []string{"ctv", "video"}, Geo: []string{"US"}, PerSellerCapMicros: 20_000_000_000, DealType: "PD",
		},
		Buyer: identity.BuyerIdentity{SeatID: "ttd-seat-123", SeatName: "Demo Seat", DSPPlatform: "ttd", AgencyID: "omnicom-456",
			AgencyName: "Demo Agency", AgencyHoldingCompany: "Omnicom", AdvertiserID: "acme-789", AdvertiserName: "Acme Soda", AdvertiserIndustry: "CPG"},
		AutoApprove: true,
		Negotiation: events.NegotiationPolicy{Strategy: strategy},
		RequestedAt: time.Now().UTC(),
	}
}

// Run executes the demo and writes the report to out and progress to
// progress. It returns the result and whether the campaign completed.
func Run(ctx context.Context, o Options, out, progress io.Writer) (Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.Strategy == "" {
		o.Strategy = "adaptive"
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	mcfg := sandbox.DefaultMarket()
	if o.Market != nil {
		mcfg = *o.Market
	}
	if o.Flight {
		if o.TimeScale <= 0 {
			o.TimeScale = 500 * time.Millisecond
		}
		if o.PacingEvery <= 0 {
			o.PacingEvery = 12 * time.Hour
		}
	}
	market, err := sandbox.Start(ctx, mcfg, sandbox.WithTimeScale(o.TimeScale))
	if err != nil {
		return Result{}, fmt.Errorf("sandbox: %w", err)
	}
	defer market.Close()
	fmt.Fprintf(progress, "sandbox: registry %s, %d IAB sellers, %d AdCP sales agents\n", market.RegistryURL, len(market.Sellers), len(market.ADCPSellers))

	creds := market.Credentials()
	cfg := config.Defaults()
	cfg.DataDir, cfg.RegistryURL, cfg.AllowPrivate, cfg.Window, cfg.Strategy = o.DataDir, market.RegistryURL, true, 30*time.Second, o.Strategy
	if o.Flight {
		// The pacer plays the flights on the sandbox sellers' clock.
		cfg.TimeScale, cfg.PacingEvery = o.TimeScale, o.PacingEvery
		fmt.Fprintf(progress, "flight: one flight day per %s, delivery read every %s of flight time\n", o.TimeScale, o.PacingEvery)
	}
	aopts := app.Options{Credentials: creds}
	var cl *cluster.Cluster
	if o.Cluster > 1 {
		cl, err = cluster.Start(ctx, cluster.Options{Nodes: o.Cluster})
		if err != nil {
			return Result{}, err
		}
		defer cl.Close()
		cfg.NATSURL, cfg.Replicas = cl.URL(), min(o.Cluster, 3)
		// A message handed to a connection that dies with its node comes
		// back after AckWait: keep it short so failover is quick.
		aopts.StageTuning = func(sc *bus.StageConfig) { sc.AckWait = 5 * time.Second }
		fmt.Fprintf(progress, "cluster: %d JetStream nodes from deploy/nats/cluster.conf (%s), %d replicas\n", o.Cluster, cl.URL(), cfg.Replicas)
	}
	if o.Flight {
		// Booked IAB deals are set up in the sandbox's DSP by the
		// activator; the reallocator acts on the pacer's deviations (a
		// default stage).
		dsp, err := sandbox.StartDSP(dspSecret)
		if err != nil {
			return Result{}, fmt.Errorf("sandbox DSP: %w", err)
		}
		defer func() { _ = dsp.Close() }()
		cfg.DSP, cfg.DSPSecret = dsp.URL, dspSecret
		if !cfg.Has(activator.Stage) {
			cfg.Stages = append(cfg.Stages, activator.Stage)
		}
		fmt.Fprintf(progress, "flight: the activator sets booked deals up in the sandbox DSP at %s\n", dsp.URL)
	}
	cfg.MetricsAddr = o.MetricsAddr
	a, err := app.Start(ctx, cfg, o.Log, aopts)
	if err != nil {
		return Result{}, err
	}
	defer a.Stop()

	id := campaign.NewID()
	req := SampleCampaign(id, o.Strategy)
	// Sellers the registry does not list can be named by the campaign; the
	// discoverer checks their trust like any other (the default market's
	// "Unlisted Media" is unknown, so the demo shows that skip too).
	for _, s := range market.Sellers {
		if !s.InRegistry {
			req.Sellers = append(req.Sellers, s.URL)
		}
	}
	fmt.Fprintf(progress, "campaign %s: %q budget %s, channels %v, strategy %s, auto-approve\n", id, req.Brief.Name, req.Brief.BudgetMicros, req.Brief.Channels, o.Strategy)
	if _, err := a.Campaigns.Submit(ctx, a.Bus, req, time.Now().UTC()); err != nil {
		return Result{}, err
	}
	res := Result{CampaignID: id, Budget: req.Brief.BudgetMicros.Dollars(), BudgetMicros: req.Brief.BudgetMicros, Deals: []Deal{}, SkippedSellers: []Skipped{}, Negotiations: []Negotiation{}, Disclosures: []Disclosure{}}
	names := map[string]string{}
	for _, s := range market.Sellers {
		if u, err := sellerclient.CanonicalURL(s.URL); err == nil {
			names[u] = s.Name
		}
	}
	for _, s := range market.ADCPSellers {
		if u, err := sellerclient.CanonicalURL(s.URL); err == nil {
			names[u] = s.Name
		}
	}
	if cl != nil {
		res.Cluster = &ClusterInfo{Nodes: o.Cluster}
	}
	killed := !o.KillLeader || cl == nil
	completed := false
	ferr := a.Bus.Follow(ctx, id, func(e events.Event) bool {
		if o.Flight {
			// Lines deliver as soon as they are booked, before the
			// campaign completes.
			observeFlight(e, &res, names, progress)
		}
		if !completed {
			completed = !Observe(e, &res, names, progress)
			if !killed && e.Type() == events.KindQuoteReady.Type {
				killed = true
				if err := killLeader(ctx, cl, res.Cluster, progress); err != nil {
					fmt.Fprintf(progress, "cluster: %v\n", err)
				}
			}
			if completed && o.Flight && res.Status.Succeeded() {
				fmt.Fprintf(progress, "flight: campaign %s %s; following its %d lines until their flights end\n", id, res.Status, len(res.Deals))
			}
		}
		return !completed || (o.Flight && res.Status.Succeeded() && !flightDone(&res))
	})
	if ferr != nil && res.Status == "" {
		return res, fmt.Errorf("campaign %s did not complete: %w", id, ferr)
	}
	if o.Flight && res.Status.Succeeded() {
		if ferr != nil {
			return res, fmt.Errorf("campaign %s: the flight did not end: %w", id, ferr)
		}
		finishFlight(&res, o.TimeScale, o.PacingEvery)
	}
	if res.Cluster != nil && res.Cluster.Killed != "" {
		fmt.Fprintf(progress, "cluster: campaign %s ended %s after losing %s (stream now led by %s)\n", id, res.Status, res.Cluster.Killed, res.Cluster.NewLeader)
	}
	if o.Inspect != nil {
		if err := o.Inspect(ctx, market, res); err != nil {
			return res, err
		}
	}
	if o.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return res, enc.Encode(res)
	}
	PrintReport(out, res)
	PrintFlight(out, res)
	return res, nil
}

// killLeader kills the event stream's leader and waits for another node to
// take over.
func killLeader(ctx context.Context, cl *cluster.Cluster, info *ClusterInfo, progress io.Writer) error {
	leader := cl.StreamLeader(bus.StreamEvents)
	if leader < 0 {
		return fmt.Errorf("stream %s has no leader to kill", bus.StreamEvents)
	}
	info.Killed = cl.Nodes[leader].Name
	fmt.Fprintf(progress, "cluster: first negotiation done; killing %s, the leader of stream %s\n", info.Killed, bus.StreamEvents)
	cl.Kill(leader)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	next, err := cl.WaitStreamLeader(wctx, bus.StreamEvents, leader)
	if err != nil {
		return err
	}
	info.NewLeader = cl.Nodes[next].Name
	fmt.Fprintf(progress, "cluster: %s took over stream %s\n", info.NewLeader, bus.StreamEvents)
	return nil
}

// Observe folds one campaign event into the result and prints a progress
// line. It returns false when the campaign is over.
func Observe(e events.Event, res *Result, names map[string]string, w io.Writer) bool {
	name := func(u string) string {
		if n := names[u]; n != "" {
			return n
		}
		return u
	}
	p, _, err := events.Payload(e)
	if err != nil {
		return true
	}
	switch v := p.(type) {
	case *events.SellerFound:
		if names != nil && names[v.Seller.URL] == "" && v.Seller.Name != "" {
			names[v.Seller.URL] = v.Seller.Name
		}
		d := Disclosure{SellerURL: v.Seller.URL, SellerName: name(v.Seller.URL), Protocol: string(v.Seller.Protocol.Or()), Trust: string(v.Seller.Trust), Tier: string(v.Disclosure.Tier), Reason: v.Disclosure.Reason}
		res.Disclosures = append(res.Disclosures, d)
		fmt.Fprintf(w, "  [discoverer] found   %-20s %-16s trust %-10s reveal %-10s (%s)\n", name(v.Seller.URL), v.Seller.Protocol.Or(), v.Seller.Trust, v.Disclosure.Tier, v.Disclosure.Reason)
	case *events.SellerSkipped:
		if names != nil && names[v.SellerURL] == "" && v.SellerName != "" {
			names[v.SellerURL] = v.SellerName
		}
		res.SkippedSellers = append(res.SkippedSellers, Skipped{SellerURL: v.SellerURL, SellerName: name(v.SellerURL), Reason: v.Code + ": " + v.Reason})
		fmt.Fprintf(w, "  [%s] skipped %-20s %s: %s\n", v.Stage, name(v.SellerURL), v.Code, v.Reason)
	case *events.DiscoveryCompleted:
		var src []string
		for _, s := range v.Sources {
			src = append(src, fmt.Sprintf("%s ok=%v", s.Source, s.OK))
		}
		fmt.Fprintf(w, "  [discoverer] done: %d sellers to shop, %d skipped (%s)\n", len(v.Sellers), v.Skipped, strings.Join(src, "; "))
	case *events.PackageFound:
		price := v.Package.ExactPriceMicros.Cents()
		if v.Package.ExactPriceMicros == 0 {
			price = v.Package.PriceRange
		}
		fmt.Fprintf(w, "  [kitfetcher] package %-20s %-14s %v at %s\n", name(v.Seller.URL), v.Package.ID, v.Package.AdFormats, price)
	case *events.QuoteReady:
		n := Negotiation{SellerURL: v.Seller.URL, SellerName: name(v.Seller.URL), PackageID: v.Package.ID, Strategy: v.Strategy, Outcome: v.Outcome, Rounds: len(v.Rounds),
			ListCPM: v.ListCPMMicros.Dollars(), ListCPMMicros: v.ListCPMMicros, FinalCPM: v.FinalCPMMicros.Dollars(), FinalCPMMicros: v.FinalCPMMicros, Tier: string(v.Tier)}
		res.Negotiations = append(res.Negotiations, n)
		strategy := v.Strategy
		if strategy == "" {
			strategy = "-"
		}
		fmt.Fprintf(w, "  [negotiator] %-20s %-14s %-11s list %6s -> %6s in %d rounds (%s, tier %s) %s\n", name(v.Seller.URL), v.Package.ID, v.Outcome,
			v.ListCPMMicros.Cents(), v.FinalCPMMicros.Cents(), len(v.Rounds), strategy, v.Tier, v.Reason)
	case *events.PortfolioProposed:
		res.Plan = v.Lines
		fmt.Fprintf(w, "  [booker] portfolio rev %d: %d deals, spend %s of %s, value %.1f\n", v.Revision, len(v.Lines), v.TotalSpendMicros, v.BudgetMicros, v.TotalValue)
		for _, l := range v.Lines {
			fmt.Fprintf(w, "           + %-20s %-14s %8d imps at %6s = $%9s  %s\n", name(l.SellerURL), l.PackageID, l.Impressions, l.CPMMicros.Cents(), l.SpendMicros.Cents(), l.Reason)
		}
		for _, x := range v.Excluded {
			fmt.Fprintf(w, "           - %-20s %-14s %s\n", name(x.SellerURL), x.PackageID, x.Reason)
		}
	case *events.PortfolioApproved:
		fmt.Fprintf(w, "  [booker] approved by %s: %d deals\n", v.ApprovedBy, len(v.Lines))
	case *events.DealBooked:
		if v.Protocol.IsADCP() {
			fmt.Fprintf(w, "  [booker] booked  %-20s %-14s AdCP media buy %s (package %s, revision %d) at %s, spend %s\n", name(v.SellerURL), v.PackageID,
				v.MediaBuyID, v.SellerPackageID, v.Revision, v.CPMMicros.Cents(), v.SpendMicros)
		} else {
			fmt.Fprintf(w, "  [booker] booked  %-20s %-14s deal %s at %s, spend %s\n", name(v.SellerURL), v.PackageID, v.DealID, v.CPMMicros.Cents(), v.SpendMicros)
		}
	case *events.BookingFailed:
		res.Failed = append(res.Failed, *v)
		fmt.Fprintf(w, "  [booker] FAILED  %-20s %-14s %s: %s\n", name(v.SellerURL), v.PackageID, v.Code, v.Reason)
	case *events.CampaignRejected:
		res.Status = events.StatusRejected
		fmt.Fprintf(w, "  campaign rejected: %s %s\n", v.Field, v.Reason)
	case *events.CampaignCompleted:
		res.Status, res.TotalSpendMicros, res.BudgetMicros = v.Status, v.TotalSpendMicros, v.BudgetMicros
		res.TotalSpend, res.Budget = v.TotalSpendMicros.Dollars(), v.BudgetMicros.Dollars()
		for _, d := range v.Deals {
			res.Deals = append(res.Deals, Deal{SellerURL: d.SellerURL, SellerName: name(d.SellerURL), PackageID: d.PackageID, DealID: d.DealID,
				Protocol: string(d.Protocol.Or()), MediaBuyID: d.MediaBuyID, SellerPackageID: d.SellerPackageID, Revision: d.Revision,
				CPM: d.CPMMicros.Dollars(), CPMMicros: d.CPMMicros, Impressions: d.Impressions, Spend: d.SpendMicros.Dollars(), SpendMicros: d.SpendMicros,
				LineKey: d.LineKey, NewLine: res.newLines[d.LineKey]})
		}
		sort.SliceStable(res.Deals, func(i, j int) bool { return res.Deals[i].SpendMicros > res.Deals[j].SpendMicros })
		return false
	}
	return true
}

// PrintReport writes the booked deals as a table, then budget and spend.
func PrintReport(w io.Writer, r Result) {
	fmt.Fprintf(w, "\nCampaign %s: %s\n\n", r.CampaignID, r.Status)
	fmt.Fprintln(w, "Identity revealed per seller:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SELLER\tPROTOCOL\tTRUST\tTIER\tWHY")
	for _, d := range r.Disclosures {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", d.SellerName, d.Protocol, d.Trust, d.Tier, d.Reason)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nNegotiations:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SELLER\tPACKAGE\tSTRATEGY\tOUTCOME\tROUNDS\tLIST CPM\tFINAL CPM")
	for _, n := range r.Negotiations {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.SellerName, n.PackageID, n.Strategy, n.Outcome, n.Rounds, n.ListCPMMicros.Cents(), n.FinalCPMMicros.Cents())
	}
	tw.Flush()
	if len(r.SkippedSellers) > 0 {
		fmt.Fprintln(w, "\nSkipped sellers:")
		for _, s := range r.SkippedSellers {
			fmt.Fprintf(w, "  %-18s %s  %s\n", s.SellerName, s.SellerURL, s.Reason)
		}
	}
	fmt.Fprintln(w, "\nBooked deals:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SELLER\tPROTOCOL\tPACKAGE\tCPM\tIMPRESSIONS\tSPEND\tDEAL ID / MEDIA BUY\t")
	for _, d := range r.Deals {
		id := d.DealID
		if d.MediaBuyID != "" {
			id = d.MediaBuyID + "/" + d.SellerPackageID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", d.SellerName, d.Protocol, d.PackageID, d.CPMMicros.Cents(), d.Impressions, d.SpendMicros.Cents(), id)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nBudget: %s   Total spend: %s   Deals: %d\n", r.BudgetMicros, r.TotalSpendMicros, len(r.Deals))
}
