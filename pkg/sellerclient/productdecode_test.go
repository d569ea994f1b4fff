package sellerclient

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// productPageCases are pages the direct decoding takes and pages it must
// hand to encoding/json; each must decode as decodeObject decodes it.
var productPageCases = []string{
	`{"products":[],"total_count":0,"limit":500,"offset":0}`,
	`{"products":null,"total_count":3}`,
	` {"products":[{"product_id":"p1","name":"N","ad_formats":["video","ctv"],"available_impressions":5000000,
	  "base_price":{"amount_micros":15000000,"currency":"USD"},"ext":{"deal_types":["PG","PD"],"floor_cpm":10.0,"inventory_type":"display","minimum_impressions":10000}}]} `,
	`{"products":[{"product_id":"p1","base_price":null,"available_impressions":null,"ad_formats":null,"ext":null,"name":null}]}`,
	`{"products":[{"product_id":"p1","ad_formats":[],"ext":{"deal_types":[],"floor_cpm":null}}]}`,
	`{"products":[{"product_id":"p1","base_price":{"amount_micros":1}}]}`,               // currency defaults to USD
	`{"products":[{"product_id":"p1","base_price":{"amount_micros":1,"currency":""}}]}`, // so does an empty one
	`{"products":[{"product_id":"p1","base_price":{"amount_micros":1,"currency":null}}]}`,
	`{"products":[{"product_id":"p1","unknown":{"deep":[1,{"x":"y"}]},"content_targeting":null}]}`,
	// encoding/json decides these.
	`{"products":[{"Product_ID":"p1"}]}`,
	`{"products":[{"product_id":"p1","product_id":"p2"}]}`,
	`{"products":[{"product_id":"p\u00e9"}]}`,
	`{"products":[{"product_\u0069d":"p1"}]}`,
	`{"products":[{"product_id":"p1","available_impressions":1.5}]}`,
	`{"products":[{"product_id":"p1","available_impressions":"5"}]}`,
	`{"products":[{"product_id":"p1","base_price":{"amount_micros":1.0}}]}`,
	`{"products":[{"product_id":"p1","base_price":{"currency":"EUR"}}]}`,
	`{"products":[{"product_id":"p1","base_price":{"amount_micros":"1"}}]}`,
	`{"products":[{"product_id":"p1","base_price":{"Amount_Micros":7,"Currency":"EUR"}}]}`,
	`{"products":[{"product_id":"p1","base_price":"free"}]}`,
	`{"products":[{"product_id":"p1","ad_formats":["video",null]}]}`,
	`{"products":[{"product_id":"p1","ad_formats":"video"}]}`,
	`{"products":[{"product_id":"p1","ext":{"floor_cpm":"10"}}]}`,
	`{"products":[{"product_id":"p1","ext":{"floor_cpm":1e400}}]}`,
	`{"products":[{"product_id":"p1","ext":{"minimum_impressions":null}}]}`,
	`{"products":[{"product_id":"p1","ext":[]}]}`,
	`{"products":[null,{"product_id":"p2"}]}`,
	`{"products":[{"product_id":"p1"}],"total_count":"1"}`,
	`{"products":[{"product_id":"p1"}],"offset":9223372036854775808}`,
	`{"products":{"product_id":"p1"}}`,
	`{"products":[{"product_id":"p1","name":"\ud800"}]}`,
	"{\"products\":[{\"product_id\":\"p1\",\"name\":\"bad \xff utf8\"}]}",
	"{\"products\":[{\"\u212aind\":1,\"product_id\":\"p1\"}]}", // Kelvin sign: folds to no field here
	`{"products":[{"product_id":"p1"}]`,
	`[]`,
	``,
	`{"products":[{"product_id":"p1"}]} trailing`,
}

// TestProductPageDecoding: every case decodes to what decodeObject gives,
// the error included (as an error or not).
func TestProductPageDecoding(t *testing.T) {
	t.Parallel()
	sample, err := os.ReadFile("testdata/sandbox-products.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append([]string{string(sample)}, productPageCases...) {
		assertProductPageMatches(t, []byte(c))
	}
	var pg productPage
	if err := decodeProductPage(sample, &pg); err != nil || len(pg.Products) != 13 || !fastProductPage(sample, new(productPage)) {
		t.Fatalf("the sandbox catalog: %d products, %v (it must take the direct path)", len(pg.Products), err)
	}
	p := pg.Products[0]
	if p.ProductID != "prod-91ddc363" || p.BasePrice == nil || p.BasePrice.AmountMicros != 15_000_000 || p.Ext.FloorCPM == nil || *p.Ext.FloorCPM != 10 ||
		!reflect.DeepEqual(p.Ext.DealTypes, []string{"PG", "PD"}) || p.AvailableImpressions == nil || *p.AvailableImpressions != 5_000_000 {
		t.Fatalf("first product %+v", p)
	}
}

// TestProductDecodingCoversEveryField: the direct decoding names each field
// of these types, in field order, by its JSON name; a new field must be
// added there too (and to the cases). The example packages take the direct
// path.
func TestProductDecodingCoversEveryField(t *testing.T) {
	for typ, names := range map[reflect.Type][]string{reflect.TypeFor[productPage](): pageFields, reflect.TypeFor[Product](): productFields,
		reflect.TypeFor[ProductExt](): extFields, reflect.TypeFor[Money](): moneyFields, reflect.TypeFor[Package](): packageFields,
		reflect.TypeFor[Placement](): placementFields} {
		var tags []string
		for f := range typ.Fields() {
			if tag := strings.Split(f.Tag.Get("json"), ",")[0]; tag != "-" {
				tags = append(tags, tag)
			}
		}
		if len(names) > 32 {
			t.Errorf("%s: fastObject tracks at most 32 fields, not %d", typ, len(names))
		}
		if !reflect.DeepEqual(tags, names) {
			t.Errorf("%s has the JSON fields %q, productdecode.go decodes %q: update it", typ, tags, names)
		}
	}
	for _, body := range []string{publicPackageBody, seatPackageBody, agencyPackageBody} {
		if !fastPackage([]byte(body), new(Package)) {
			t.Errorf("the direct decoding passed on %.60s...", body)
		}
	}
}

func assertProductPageMatches(t *testing.T, b []byte) {
	t.Helper()
	var want, got productPage
	werr := decodeObject(b, &want)
	gerr := decodeProductPage(b, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%q: error %v, encoding/json says %v", b, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
	}
}

// FuzzProductPageMatchesReference holds the direct catalog decoding to
// encoding/json's on any input.
func FuzzProductPageMatchesReference(f *testing.F) {
	if sample, err := os.ReadFile("testdata/sandbox-products.json"); err == nil {
		f.Add(sample)
	}
	for _, c := range productPageCases {
		f.Add([]byte(c))
	}
	f.Add([]byte(strings.Repeat(`{"products":[`, 1) + `{"product_id":"a"},{"product_id":"b","ext":{"deal_types":["PD"]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		assertProductPageMatches(t, b)
	})
}

// BenchmarkProductPageDecode decodes the sandbox's 13-product catalog page
// directly and through encoding/json (the reference).
func BenchmarkProductPageDecode(b *testing.B) {
	sample, err := os.ReadFile("testdata/sandbox-products.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		decode func([]byte, *productPage) error
	}{{"direct", decodeProductPage}, {"encoding-json", func(b []byte, pg *productPage) error { return decodeObject(b, pg) }}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(sample)))
			for b.Loop() {
				var pg productPage
				if err := c.decode(sample, &pg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
