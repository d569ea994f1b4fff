package booker

import (
	"strings"
	"testing"

	"github.com/dealflow/dealflow/internal/campaign"
	"github.com/dealflow/dealflow/pkg/events"
)

// TestRequoteWithoutProductFailsNoProduct: a line that needs a re-quote (its
// planned volume differs from the quote's) but whose quote names no product
// fails with code no_product; no quote request without a product_id ever
// reaches the seller.
func TestRequoteWithoutProductFailsNoProduct(t *testing.T) {
	f := newFixture(t, nil)
	q := f.quotes[0]
	q.Package.ProductID = ""
	f.c.Quotes[campaign.QuoteKey(q.Seller.URL, q.Package.ID)] = q
	storeQuote(t, f.svc.Campaigns, f.c, q)
	quotePosts := func() int {
		n := 0
		for _, r := range f.seller.Requests() {
			if r.Method == "POST" && strings.HasSuffix(r.Path, "/api/v1/quotes") {
				n++
			}
		}
		return n
	}
	before := quotePosts()
	out, err := f.svc.bookAll(t.Context(), f.store(t, []events.PlanLine{f.line(q, 150000)}))
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(out)
	if len(k[events.KindBookingFailed.Type]) != 1 || len(k[events.KindDealBooked.Type]) != 0 {
		t.Fatalf("outputs %v", keysOf(k))
	}
	bf, _ := events.PayloadOf[events.BookingFailed](k[events.KindBookingFailed.Type][0], events.KindBookingFailed)
	if bf.Code != "no_product" {
		t.Fatalf("failure %+v: want code no_product", bf)
	}
	if n := quotePosts() - before; n != 0 {
		t.Fatalf("%d re-quote requests sent without a product", n)
	}
}
