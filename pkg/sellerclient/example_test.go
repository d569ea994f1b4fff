package sellerclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/dealflow/dealflow/pkg/market"
	"github.com/dealflow/dealflow/pkg/sellerclient"
)

// List a seller's packages (the public views) and read each one's price
// range. The seller here is a test server on the loopback address, so the
// client is told to allow private addresses; against real sellers the zero
// Config refuses them.
func ExampleClient_ListPackages() {
	seller := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/media-kit/packages" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"packages":[
			{"package_id":"pkg-1","name":"Sports Video Premium","ad_formats":["video"],"price_range":"$28-$42 CPM","is_featured":true},
			{"package_id":"pkg-2","name":"Run of Site Display","ad_formats":["display"],"price_range":"$6 CPM"}]}`)
	}))
	defer seller.Close()

	client := sellerclient.New(sellerclient.Config{AllowPrivate: true})
	packages, err := client.ListPackages(context.Background(), seller.URL, sellerclient.ListOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range packages {
		low, high, _ := sellerclient.ParsePriceRange(p.PriceRange)
		fmt.Printf("%s %q %v: %s to %s CPM (authenticated view: %v)\n", p.PackageID, p.Name, p.AdFormats,
			sellerclient.PriceMicros(low), sellerclient.PriceMicros(high), p.Authenticated)
	}
	// Output:
	// pkg-1 "Sports Video Premium" [video]: $28.00 to $42.00 CPM (authenticated view: false)
	// pkg-2 "Run of Site Display" [display]: $6.00 to $6.00 CPM (authenticated view: false)
}

// A seller's error answer is one *sellerclient.Error, classified for
// errors.Is.
func ExampleClient_Package_notFound() {
	seller := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"detail":"Package not found"}`)
	}))
	defer seller.Close()

	client := sellerclient.New(sellerclient.Config{AllowPrivate: true})
	_, err := client.Package(context.Background(), seller.URL, "pkg-9", sellerclient.Auth{}, sellerclient.TierClaim{Tier: market.TierAgency, AgencyID: "ag-1"})
	fmt.Println(errors.Is(err, sellerclient.ErrNotFound), sellerclient.IsTransient(err))
	// Output:
	// true false
}

func ExampleParsePriceRange() {
	for _, s := range []string{"$28-$42 CPM", "$33 CPM", "1,200.50", "$42-$28 CPM"} {
		low, high, ok := sellerclient.ParsePriceRange(s)
		fmt.Println(low, high, ok)
	}
	// Output:
	// 28 42 true
	// 33 33 true
	// 1200.5 1200.5 true
	// 0 0 false
}
