package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/identity"
	"github.com/dealflow/dealflow/pkg/sellerclient"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
	"github.com/dealflow/dealflow/services/discoverer"
	"github.com/dealflow/dealflow/services/kitfetcher"
)

// SellerRow is one line of `dealflow sellers`.
type SellerRow struct {
	URL      string `json:"seller_url"`
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Trust    string `json:"trust"`
	Source   string `json:"source,omitempty"`
	Reveal   string `json:"reveal"`
	Reason   string `json:"reason"`
	Contact  bool   `json:"contacted"`
	SkipCode string `json:"skip_code,omitempty"`
}

// PackageRow is one line of `dealflow packages`, the guide's comparison view.
type PackageRow struct {
	SellerURL       string        `json:"seller_url"`
	SellerName      string        `json:"seller_name,omitempty"`
	Protocol        string        `json:"protocol"`
	PackageID       string        `json:"package_id"`
	PricingModel    string        `json:"pricing_model,omitempty"`
	Name            string        `json:"name"`
	Formats         []string      `json:"ad_formats"`
	Price           float64       `json:"price"`
	PriceMicros     events.Micros `json:"price_micros"`
	PriceRange      string        `json:"price_range"`
	Floor           float64       `json:"floor_price,omitempty"`
	FloorMicros     events.Micros `json:"floor_price_micros,omitempty"`
	Negotiable      bool          `json:"negotiable"`
	VolumeDiscounts bool          `json:"volume_discounts"`
	Tier            string        `json:"tier"`
}

func cmdBrowse(ctx context.Context, args []string, stdout, stderr io.Writer, packages bool) error {
	name := "sellers"
	if packages {
		name = "packages"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config.Config
	binder := config.Register(fs, &cfg, "registry", "registry-kind", "registry-token", "known-sellers", "sellers", "credentials", "allow-private", "seller-timeout")
	caps := fs.String("caps", "", "capabilities wanted, comma-separated (e.g. ctv,video); empty = all")
	budget := fs.Float64("budget", 50000, "deal value the identity strategy assumes")
	buyerFile := fs.String("buyer", "", "JSON file with the buyer identity (default: the demo identity)")
	jsonOut := fs.Bool("json", false, "print JSON")
	withSandbox := fs.Bool("sandbox", false, "browse the built-in sandbox market")
	unknown := fs.Bool("allow-unknown", false, "include unknown-trust sellers (public view)")
	if err := fs.Parse(config.JoinValues(args)); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if err := binder.Finish(); err != nil {
		return err
	}
	var creds *identity.Credentials
	var err error
	if *withSandbox {
		m, err := sandbox.Start(ctx, sandbox.DefaultMarket())
		if err != nil {
			return err
		}
		defer m.Close()
		cfg.RegistryURL, cfg.AllowPrivate = m.RegistryURL, true
		creds = m.Credentials()
	} else if creds, err = app.LoadCredentials(cfg.Credentials); err != nil {
		return err
	}
	known, err := app.LoadKnown(cfg)
	if err != nil {
		return err
	}
	if cfg.RegistryURL == "" && len(known) == 0 {
		return errors.New("no sellers to browse: set --registry, --known-sellers or --sandbox")
	}
	req := demo.SampleCampaign("browse", "")
	budgetMicros, err := events.MicrosFromDollars(*budget)
	if err != nil || budgetMicros <= 0 {
		return fmt.Errorf("--budget %v: must be a positive amount of dollars", *budget)
	}
	req.Brief.BudgetMicros, req.Brief.PerSellerCapMicros, req.AllowUnknownSellers = budgetMicros, 0, *unknown
	req.Brief.Channels, req.Brief.Geo = nil, nil
	if *caps != "" {
		req.Brief.Channels = strings.Split(*caps, ",")
	}
	if *buyerFile != "" {
		if req.Buyer, err = app.LoadBuyer(*buyerFile); err != nil {
			return err
		}
	}
	client := sellerclient.New(sellerclient.Config{AllowPrivate: cfg.AllowPrivate, Allow: cfg.AllowPrefixes})
	svc := app.NewDiscoverer(cfg, client, app.DiscovererInputs{Known: known, Credentials: creds}, zerolog.Nop())
	res, err := svc.Discover(ctx, req)
	if err != nil {
		return err
	}
	if !packages {
		return printSellers(stdout, res, *jsonOut)
	}
	kit := &kitfetcher.Service{Client: client, ADCP: adcp.New(adcp.Config{AllowPrivate: cfg.AllowPrivate, Allow: cfg.AllowPrefixes}), Credentials: creds, SellerTimeout: cfg.SellerTO}
	var mu sync.Mutex
	var rows []PackageRow
	// Every seller that shows no package says why: left out at discovery,
	// or its media kit failed.
	skipped := []SkippedRow{}
	for _, sk := range res.Skipped {
		skipped = append(skipped, SkippedRow{SellerURL: sk.SellerURL, SellerName: sk.SellerName, Stage: sk.Stage, Code: sk.Code, Reason: sk.Reason})
	}
	var wg sync.WaitGroup
	for _, f := range res.Found {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkgs, err := kit.Fetch(ctx, f)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				row := SkippedRow{SellerURL: f.Seller.URL, SellerName: f.Seller.Name, Stage: kitfetcher.Stage, Code: "error", Reason: err.Error()}
				var se *kitfetcher.SkipError
				if errors.As(err, &se) {
					row.Code, row.Reason = se.Code, se.Reason
				}
				skipped = append(skipped, row)
				return
			}
			for _, p := range pkgs {
				price := p.ExactPriceMicros
				if price == 0 {
					price = p.PriceLowMicros
				}
				rows = append(rows, PackageRow{SellerURL: f.Seller.URL, SellerName: f.Seller.Name, Protocol: string(f.Seller.Protocol.Or()), PackageID: p.ID,
					PricingModel: p.PricingModel, Name: p.Name, Formats: p.AdFormats,
					Price: price.Dollars(), PriceMicros: price, PriceRange: p.PriceRange, Floor: p.FloorPriceMicros.Dollars(), FloorMicros: p.FloorPriceMicros, Negotiable: p.Negotiable, VolumeDiscounts: p.VolumeDiscounts,
					Tier: string(f.Disclosure.Tier)})
			}
		}()
	}
	wg.Wait()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].PriceMicros != rows[j].PriceMicros {
			return rows[i].PriceMicros < rows[j].PriceMicros
		}
		return rows[i].SellerURL+rows[i].PackageID < rows[j].SellerURL+rows[j].PackageID
	})
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].SellerURL < skipped[j].SellerURL })
	if *jsonOut {
		if rows == nil {
			rows = []PackageRow{}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"packages": rows, "skipped": skipped})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SELLER\tPROTOCOL\tPACKAGE\tFORMATS\tPRICE\tRANGE\tFLOOR\tNEGOTIABLE\tVOLUME DISC.\tTIER")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\t%v\t%s\n", nameOr(r.SellerName, r.SellerURL), r.Protocol, r.PackageID, strings.Join(r.Formats, ","),
			r.PriceMicros.Cents(), r.PriceRange, r.FloorMicros.Cents(), r.Negotiable, r.VolumeDiscounts, r.Tier)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(skipped) == 0 {
		return nil
	}
	fmt.Fprintln(stdout, "\nSkipped sellers:")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SELLER\tSTAGE\tCODE\tWHY")
	for _, r := range skipped {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", nameOr(r.SellerName, r.SellerURL), r.Stage, r.Code, r.Reason)
	}
	return tw.Flush()
}

// SkippedRow is a seller `packages` shows no package of, and why.
type SkippedRow struct {
	SellerURL  string `json:"seller_url"`
	SellerName string `json:"seller_name,omitempty"`
	Stage      string `json:"stage"`
	Code       string `json:"code"`
	Reason     string `json:"reason"`
}

func nameOr(n, u string) string {
	if n != "" {
		return n
	}
	return u
}

func printSellers(w io.Writer, res discoverer.Result, jsonOut bool) error {
	rows := []SellerRow{}
	for _, f := range res.Found {
		rows = append(rows, SellerRow{URL: f.Seller.URL, Name: f.Seller.Name, Protocol: string(f.Seller.Protocol.Or()), Trust: string(f.Seller.Trust), Source: f.Seller.Source,
			Reveal: string(f.Disclosure.Tier), Reason: f.Disclosure.Reason, Contact: true})
	}
	for _, s := range res.Skipped {
		rows = append(rows, SellerRow{URL: s.SellerURL, Name: s.SellerName, Protocol: string(s.Protocol), Trust: string(s.Trust), Reveal: "nothing", Reason: s.Reason, SkipCode: s.Code})
	}
	if jsonOut {
		return json.NewEncoder(w).Encode(map[string]any{"sellers": rows, "sources": res.Completed.Sources})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SELLER\tPROTOCOL\tURL\tTRUST\tREVEALED\tWHY")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", nameOr(r.Name, "-"), nameOr(r.Protocol, "-"), r.URL, r.Trust, r.Reveal, r.Reason)
	}
	for _, s := range res.Completed.Sources {
		fmt.Fprintf(tw, "source %s\t\tok=%v\t%s\t\t\n", s.Source, s.OK, s.Detail)
	}
	return tw.Flush()
}
