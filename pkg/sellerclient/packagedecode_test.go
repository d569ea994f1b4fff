package sellerclient

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestPackageListDecoding(t *testing.T) {
	for _, c := range []struct {
		body    string
		n       int
		auth    []bool
		weights []float64
		wantErr bool
	}{
		{`{"packages":[` + agencyPackageBody + `,` + publicPackageBody + `]}`, 2, []bool{true, false}, nil, false},
		{`[{"exact_price":null}]`, 1, []bool{true}, nil, false},
		{`{"packages":[{"eXACt_priCe":3}]}`, 1, []bool{false}, nil, false}, // keys match exactly
		{`{"packages":[{"\u0065xact_price":3}]}`, 1, []bool{true}, nil, false},
		{`{"packages":[{"exact_price":3,"eXACt_priCe":4,"Currency":"EUR"}]}`, 1, []bool{true}, nil, false},
		{`{"packages":[{"placements":[{"weight":null},{"weight":0.5},null]}]}`, 1, []bool{false}, []float64{1, 0.5, 1}, false},
		{`{"PACKAGES":[{}]}`, 0, nil, nil, false},
		{`{"packages":[{}],"packages":null}`, 0, nil, nil, true}, // a name twice
		{`{"packages":[{"package_id":"p","package_id":"q"}]}`, 0, nil, nil, true},
		{`{"results":[1],"packages":[]}`, 0, nil, nil, false}, // only the key is decoded
		{`{"results":[1,],"packages":[]}`, 0, nil, nil, true}, // the rest is still JSON
		{`{"packages":[]} {}`, 0, nil, nil, true},
		{"{\"packages\":[{\"name\":\"\xff\"}]}", 0, nil, nil, true},
		{`{"packages":[{"exact_price":1e999}]}`, 0, nil, nil, true},
		{`{"packages":[{"device_types":[1.5]}]}`, 0, nil, nil, true},
		{`{"packages":[null,{"cattax":"3","rate_type":null}]}`, 2, []bool{false, false}, nil, false},
		{`{"packages":null}`, 0, nil, nil, false},
		{`{"packages":{}}`, 0, nil, nil, true},
		{`{"packages":[1]}`, 0, nil, nil, true},
		{`{"packages":[{}],"other":tru}`, 0, nil, nil, true},
		{`{"packages":[{}] `, 0, nil, nil, true},
		{`[{},]`, 0, nil, nil, true},
		{``, 0, nil, nil, true},
		{`"packages"`, 0, nil, nil, true},
	} {
		got, err := parsePackageList(bodyOf([]byte(c.body)), "packages")
		if (err != nil) != c.wantErr {
			t.Fatalf("%s: err %v, want error %v", c.body, err, c.wantErr)
		}
		if err != nil {
			continue
		}
		if len(got) != c.n {
			t.Fatalf("%s: %d packages, want %d", c.body, len(got), c.n)
		}
		for i, a := range c.auth {
			if got[i].Authenticated != a {
				t.Errorf("%s: package %d authenticated %v, want %v", c.body, i, got[i].Authenticated, a)
			}
		}
		if c.weights != nil {
			var ws []float64
			for _, p := range got[0].Placements {
				ws = append(ws, p.Weight)
			}
			if !reflect.DeepEqual(ws, c.weights) {
				t.Errorf("%s: weights %v, want %v", c.body, ws, c.weights)
			}
		}
	}
}

// TestPackageDefaults: the seller's defaults and the authenticated view's
// marks, whichever decoder (go-json-experiment/json, or encoding/json
// through UnmarshalJSON) is used.
func TestPackageDefaults(t *testing.T) {
	for _, c := range []struct {
		body string
		want Package
	}{
		{`{"package_id":"p"}`, Package{PackageID: "p", Cattax: 2, RateType: "cpm"}},
		{`{"package_id":"p","cattax":"4","rate_type":"","exact_price":null,"audience_capabilities":null}`,
			Package{PackageID: "p", Cattax: 4, RateType: "cpm", Currency: "USD", Authenticated: true}},
		{`{"package_id":"p","cattax":3,"exact_price":14,"floor_price":12.5,"currency":"EUR","placements":[{"product_id":"x","weight":0.5},{"device_types":[1,2]}]}`,
			Package{PackageID: "p", Cattax: 3, RateType: "cpm", ExactPrice: ptr(14.0), FloorPrice: ptr(12.5), Currency: "EUR", Authenticated: true,
				Placements: []Placement{{ProductID: "x", Weight: 0.5}, {DeviceTypes: []int{1, 2}, Weight: 1}}}},
		{`{"package_id":"p","audience_capabilities":{"x":[1]},"negotiation_enabled":true,"placements":null}`,
			Package{PackageID: "p", Cattax: 2, RateType: "cpm", AudienceCapabilities: json.RawMessage(`{"x":[1]}`), NegotiationEnabled: true}},
	} {
		var v2 Package
		got, err := parsePackage(bodyOf([]byte(c.body)))
		if err != nil || !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s:\n got %+v (%v)\nwant %+v", c.body, got, err, c.want)
		}
		if err := json.Unmarshal([]byte(c.body), &v2); err != nil || !reflect.DeepEqual(v2, c.want) {
			t.Errorf("%s through encoding/json:\n got %+v (%v)\nwant %+v", c.body, v2, err, c.want)
		}
	}
}

// BenchmarkPackageListDecode decodes a two-package list (the seat and the
// agency example views) as the client does.
func BenchmarkPackageListDecode(b *testing.B) {
	list := []byte(`{"packages":[` + seatPackageBody + `,` + agencyPackageBody + `]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(list)))
	for b.Loop() {
		if ps, err := parsePackageList(bodyOf(list), "packages"); err != nil || len(ps) != 2 {
			b.Fatal(len(ps), err)
		}
	}
}
