package sellerclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// The reference decoding below is the straightforward one the package used
// before the one-pass decoding: every level through json.Unmarshal, the
// keys of a package through a map (exact key match). The fuzz target holds
// the fast decoding to it.

type refPlacement Placement

func (p *refPlacement) UnmarshalJSON(b []byte) error {
	type alias Placement
	v := alias{Weight: 1.0}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = refPlacement(v)
	return nil
}

type refPackage Package

func (p *refPackage) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return nil
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	type alias Package
	aux := struct {
		*alias
		Cattax     *flexInt       `json:"cattax"`
		Placements []refPlacement `json:"placements,omitempty"`
	}{alias: (*alias)(p)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	p.Placements = nil
	if aux.Placements != nil {
		p.Placements = make([]Placement, len(aux.Placements))
		for i, r := range aux.Placements {
			p.Placements[i] = Placement(r)
		}
	}
	p.Cattax = 2
	if aux.Cattax != nil {
		p.Cattax = int(*aux.Cattax)
	}
	if p.RateType == "" {
		p.RateType = "cpm"
	}
	_, p.Authenticated = keys["exact_price"]
	if p.Authenticated && p.Currency == "" {
		p.Currency = "USD"
	}
	if isNull(p.AudienceCapabilities) {
		p.AudienceCapabilities = nil
	}
	for _, f := range []*float64{p.ExactPrice, p.FloorPrice} {
		if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
			return errors.New("package: non-finite price")
		}
	}
	return nil
}

func refPackageList(b []byte, key string) ([]Package, error) {
	t := trimSpace(b)
	var list []refPackage
	if len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &list); err != nil {
			return nil, err
		}
	} else {
		var obj map[string]json.RawMessage
		if err := decodeObject(b, &obj); err != nil {
			return nil, err
		}
		raw, ok := obj[key]
		if !ok || isNull(raw) {
			return []Package{}, nil
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
	}
	out := make([]Package, len(list))
	for i, p := range list {
		out[i] = Package(p)
	}
	return out, nil
}

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
		{`{"packages":[{"placements":[{"weight":null},{"weight":0.5},null]}]}`, 1, []bool{false}, []float64{1, 0.5, 1}, false},
		{`{"PACKAGES":[{}]}`, 0, nil, nil, false},
		{`{"packages":[{}],"packages":null}`, 0, nil, nil, false},
		{`{"packages":null}`, 0, nil, nil, false},
		{`{"packages":{}}`, 0, nil, nil, true},
		{`{"packages":[1]}`, 0, nil, nil, true},
		{`{"packages":[{}],"other":tru}`, 0, nil, nil, true},
		{`{"packages":[{}] `, 0, nil, nil, true},
		{`[{},]`, 0, nil, nil, true},
		{``, 0, nil, nil, true},
		{`"packages"`, 0, nil, nil, true},
	} {
		got, err := parsePackageList([]byte(c.body), "packages")
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

// FuzzPackageListMatchesReference holds the one-pass package-list decoding
// to the reference: the same packages, and an error exactly when the
// reference has one.
func FuzzPackageListMatchesReference(f *testing.F) {
	for _, s := range []string{publicPackageBody, seatPackageBody, agencyPackageBody,
		`{"packages":[` + agencyPackageBody + `,` + publicPackageBody + `]}`, `[` + seatPackageBody + `]`,
		`{"packages":[{"eXACt_priCe":0}]}`, `{"packages":[{"\u0065xact_price":null}]}`, `{"packages":[null,{"placements":[null,{"weight":null}]}]}`,
		`{"packages":[{}],"packages":[{"cattax":"3"}]}`, `{"packages":{}}`, `{"packages":1}`, `[1]`, `{"x":[}],"packages":[]}`,
		`{"packages":[{"placements":[{"Weight":2,"weight":3}]}]}`, `{"packages":[{"exact_price":1e999}]}`, ` [ ] `, `{"a":"\"}","packages":[{}]}`,
		// The direct decoding's edges: empty and null lists, defaults, nulls, numbers as strings.
		`[{"package_id":"p","placements":[],"device_types":[],"cat":null,"cattax":3,"exact_price":null,"audience_capabilities":null,"is_featured":null}]`,
		`[{"package_id":"p","placements":null,"cattax":"4","currency":"","rate_type":"","audience_capabilities":{"x":[1]},"negotiation_enabled":true}]`,
		`[{"package_id":"p","placements":[{"product_id":"x","weight":0.5},{"device_types":[1,2]}],"floor_price":12.5,"exact_price":14}]`,
		`[{"package_id":"p","device_types":[1.5]},{"package_id":"q","device_types":["2"]},{"package_id":"r","is_featured":"true"}]`,
		`[{"package_id":"p","package_id":"q"},{"Package_Id":"r"},{"tags":["a",null]},{"cattax":2.0},{"cattax":null}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, ok := capped(t, data)
		if !ok {
			return
		}
		for _, key := range []string{"packages", "results"} {
			got, err := parsePackageList(b, key)
			want, werr := refPackageList(b, key)
			if (err != nil) != (werr != nil) {
				t.Fatalf("key %q: error %v, reference error %v", key, err, werr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("key %q:\n got %+v\nwant %+v", key, got, want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "package list") {
				t.Fatalf("error %q does not say what failed", err)
			}
		}
		var p, rp refPackage
		perr := (*Package)(&p).UnmarshalJSON(b)
		rerr := rp.UnmarshalJSON(b)
		if (perr != nil) != (rerr != nil) || (perr == nil && !reflect.DeepEqual(p, rp)) {
			t.Fatalf("package: %+v (%v), reference %+v (%v)", p, perr, rp, rerr)
		}
	})
}

// BenchmarkPackageListDecode decodes a two-package list (the seat and the
// agency example views) directly and through the reference decoding.
func BenchmarkPackageListDecode(b *testing.B) {
	list := []byte(`{"packages":[` + seatPackageBody + `,` + agencyPackageBody + `]}`)
	for _, c := range []struct {
		name   string
		decode func([]byte, string) ([]Package, error)
	}{{"direct", parsePackageList}, {"reference", refPackageList}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(list)))
			for b.Loop() {
				if ps, err := c.decode(list, "packages"); err != nil || len(ps) != 2 {
					b.Fatal(len(ps), err)
				}
			}
		})
	}
}
