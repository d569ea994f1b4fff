package sellerclient

import (
	"os"
	"reflect"
	"testing"
)

// TestProductPageDecoding: a catalog page decodes with the seller's
// defaults, and a page that breaks the strictness of the seller contract
// (see decodeObject) is refused.
func TestProductPageDecoding(t *testing.T) {
	t.Parallel()
	sample, err := os.ReadFile("testdata/sandbox-products.json")
	if err != nil {
		t.Fatal(err)
	}
	var pg productPage
	if err := decodeObject(sample, &pg); err != nil || len(pg.Products) != 13 || pg.Limit != 500 {
		t.Fatalf("the sandbox catalog: %d products, limit %d, %v", len(pg.Products), pg.Limit, err)
	}
	p := pg.Products[0]
	if p.ProductID != "prod-91ddc363" || p.BasePrice == nil || *p.BasePrice != (Money{15_000_000, "USD"}) || p.Ext.FloorCPM == nil || *p.Ext.FloorCPM != 10 ||
		!reflect.DeepEqual(p.Ext.DealTypes, []string{"PG", "PD"}) || p.AvailableImpressions == nil || *p.AvailableImpressions != 5_000_000 ||
		p.Ext.MinimumImpressions != 10_000 || p.InventoryType() != "display" {
		t.Fatalf("first product %+v", p)
	}
	if pg.Products[1].AvailableImpressions != nil {
		t.Fatalf("null available_impressions decoded as %d", *pg.Products[1].AvailableImpressions)
	}

	for _, c := range []struct {
		body string
		want *productPage // nil: an error
	}{
		{`{"products":[],"total_count":0,"limit":500,"offset":0}`, &productPage{Products: []Product{}, Limit: 500}},
		{`{"products":null,"total_count":3}`, &productPage{TotalCount: 3}},
		{`{"products":[{"product_id":"p1","base_price":null,"available_impressions":null,"ad_formats":null,"ext":null,"name":null}]}`,
			&productPage{Products: []Product{{ProductID: "p1"}}}},
		{`{"products":[{"product_id":"p1","ad_formats":[],"ext":{"deal_types":[],"floor_cpm":null}}]}`,
			&productPage{Products: []Product{{ProductID: "p1", AdFormats: []string{}, Ext: ProductExt{DealTypes: []string{}}}}}},
		{`{"products":[{"product_id":"p1","base_price":{"amount_micros":1}}]}`, // currency defaults to USD
			&productPage{Products: []Product{{ProductID: "p1", BasePrice: &Money{1, "USD"}}}}},
		{`{"products":[{"product_id":"p1","base_price":{"amount_micros":1,"currency":""}}]}`, // so does an empty one
			&productPage{Products: []Product{{ProductID: "p1", BasePrice: &Money{1, "USD"}}}}},
		{`{"products":[{"product_id":"p1","base_price":{"amount_micros":1,"currency":null}}]}`,
			&productPage{Products: []Product{{ProductID: "p1", BasePrice: &Money{1, "USD"}}}}},
		{`{"products":[{"product_id":"p1","unknown":{"deep":[1,{"x":"y"}]},"content_targeting":null}]}`,
			&productPage{Products: []Product{{ProductID: "p1"}}}},
		{`{"products":[{"product_\u0069d":"p\u00e9"}]}`, &productPage{Products: []Product{{ProductID: "pé"}}}}, // escapes are JSON
		// Names match exactly: a key in another case sets nothing.
		{`{"products":[{"Product_ID":"p1","product_id":"p2"}]}`, &productPage{Products: []Product{{ProductID: "p2"}}}},
		{`{"products":[{"product_id":"p1","base_price":{"Amount_Micros":7,"amount_micros":8,"Currency":"EUR"}}]}`,
			&productPage{Products: []Product{{ProductID: "p1", BasePrice: &Money{8, "USD"}}}}},
		{`{"products":[{"product_id":"p1","base_price":{"Amount_Micros":7}}]}`, nil}, // so amount_micros is missing
		{`{"products":[{"product_id":"p1","product_id":"p2"}]}`, nil},                // a name twice
		{`{"products":[],"products":null}`, nil},
		{`{"products":[{"product_id":"p1","name":"\ud800"}]}`, nil}, // a lone surrogate
		{"{\"products\":[{\"product_id\":\"p1\",\"name\":\"bad \xff utf8\"}]}", nil},
		{`{"products":[{"product_id":"p1","available_impressions":1.5}]}`, nil},
		{`{"products":[{"product_id":"p1","available_impressions":"5"}]}`, nil},
		{`{"products":[{"product_id":"p1","base_price":{"amount_micros":1.0}}]}`, nil},
		{`{"products":[{"product_id":"p1","base_price":{"amount_micros":2e7}}]}`, nil},
		{`{"products":[{"product_id":"p1","base_price":{"currency":"EUR"}}]}`, nil},
		{`{"products":[{"product_id":"p1","base_price":{"amount_micros":"1"}}]}`, nil},
		{`{"products":[{"product_id":"p1","base_price":"free"}]}`, nil},
		{`{"products":[{"product_id":"p1","ad_formats":"video"}]}`, nil},
		{`{"products":[{"product_id":"p1","ext":{"floor_cpm":"10"}}]}`, nil},
		{`{"products":[{"product_id":"p1","ext":{"floor_cpm":1e400}}]}`, nil},
		{`{"products":[{"product_id":"p1","ext":[]}]}`, nil},
		{`{"products":[{"product_id":"p1"}],"total_count":"1"}`, nil},
		{`{"products":[{"product_id":"p1"}],"offset":9223372036854775808}`, nil},
		{`{"products":{"product_id":"p1"}}`, nil},
		{`{"products":[{"product_id":"p1"}]`, nil},
		{`{"products":[{"product_id":"p1"}]} trailing`, nil},
		{`[]`, nil},
		{``, nil},
	} {
		var got productPage
		err := decodeObject([]byte(c.body), &got)
		switch {
		case c.want == nil && err == nil:
			t.Errorf("%q: decoded as %+v, want an error", c.body, got)
		case c.want != nil && err != nil:
			t.Errorf("%q: %v", c.body, err)
		case c.want != nil && !reflect.DeepEqual(got, *c.want):
			t.Errorf("%q:\n got %+v\nwant %+v", c.body, got, *c.want)
		}
	}
}

// BenchmarkProductPageDecode decodes the sandbox's 13-product catalog page
// as the client does.
func BenchmarkProductPageDecode(b *testing.B) {
	sample, err := os.ReadFile("testdata/sandbox-products.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(sample)))
	for b.Loop() {
		var pg productPage
		if err := decodeObject(sample, &pg); err != nil {
			b.Fatal(err)
		}
	}
}
