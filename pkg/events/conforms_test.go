package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// sampleJSON is every kind's sample payload as the producers encode it.
func sampleJSON(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for typ, p := range samplePayloads() {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out[typ] = b
	}
	return out
}

// TestConformsProvesEveryKind: the fast check is compiled for every kind
// (a schema keyword it does not implement would silently send every event
// to the slow validator) and proves each sample valid, with its campaign id.
func TestConformsProvesEveryKind(t *testing.T) {
	t.Parallel()
	samples := sampleJSON(t)
	for _, k := range Kinds {
		cid, has, ok := Conforms(k, samples[k.Type])
		if !ok || !has || cid != "c-1" {
			t.Errorf("%s: Conforms = (%q, %v, %v), want (c-1, true, true)", k.Name, cid, has, ok)
		}
		if _, err := ValidateDataValue(k, samples[k.Type]); err != nil {
			t.Errorf("%s: the general validator refuses the sample: %v", k.Name, err)
		}
	}
}

// TestConformsProvesNothingElse: each case is a sample payload broken
// (valid false: one schema rule violated) or merely made unusual (valid
// true: escaped or duplicate keys, a large object, an integer written 1.0).
// The fast check proves none of them, and ValidateData (fast check, then
// the general validator) gives the general validator's verdict.
func TestConformsProvesNothingElse(t *testing.T) {
	t.Parallel()
	samples := sampleJSON(t)
	sf := string(samples[KindSellerFound.Type])
	req := string(samples[KindCampaignRequested.Type])
	deal := string(samples[KindDealBooked.Type])
	for _, c := range []struct {
		name  string
		kind  Kind
		data  string
		valid bool // the general validator's verdict
	}{
		{"missing required campaign_id", KindSellerFound, strings.Replace(sf, `"campaign_id":"c-1",`, "", 1), false},
		{"enum violated (trust)", KindSellerFound, strings.Replace(sf, `"trust":"verified"`, `"trust":"approved"`, 1), false},
		{"enum violated (tier)", KindSellerFound, strings.Replace(sf, `"tier":"agency"`, `"tier":"AGENCY"`, 1), false},
		{"string where an integer is wanted", KindCampaignRequested, strings.Replace(req, `"budget_micros":50000000000`, `"budget_micros":"50000000000"`, 1), false},
		{"fraction where an integer is wanted", KindCampaignRequested, strings.Replace(req, `"budget_micros":50000000000`, `"budget_micros":50000000000.5`, 1), false},
		{"array where a string is wanted", KindSellerFound, strings.Replace(sf, `"campaign_id":"c-1"`, `"campaign_id":["c-1"]`, 1), false},
		{"trailing garbage", KindSellerFound, sf + "x", false},
		{"truncated", KindSellerFound, sf[:len(sf)-3], false},
		{"not an object", KindSellerFound, `["c-1"]`, false},
		{"null payload", KindSellerFound, `null`, false},
		{"empty", KindSellerFound, ``, false},
		{"escaped key", KindSellerFound, strings.Replace(sf, `"campaign_id"`, `"campaign\u005fid"`, 1), true},
		{"duplicate key, last one wins", KindSellerFound, strings.Replace(sf, `"campaign_id":"c-1"`, `"campaign_id":7,"campaign_id":"c-1"`, 1), true},
		{"duplicate key, last one invalid", KindSellerFound, strings.Replace(sf, `"campaign_id":"c-1"`, `"campaign_id":"c-1","campaign_id":7`, 1), false},
		{"an object with more keys than the fast check compares", KindDealBooked, strings.Replace(deal, `"activation_instructions":{`, `"activation_instructions":{`+manyKeys(70), 1), true},
		{"integer written with a fraction", KindCampaignRequested, strings.Replace(req, `"budget_micros":50000000000`, `"budget_micros":50000000000.0`, 1), true},
	} {
		if c.data == string(samples[c.kind.Type]) {
			t.Fatalf("%s: the mutation did not apply", c.name)
		}
		if _, _, fast := Conforms(c.kind, []byte(c.data)); fast {
			t.Errorf("%s: proven by the fast check", c.name)
		}
		if err := ValidateData(c.kind, []byte(c.data)); (err == nil) != c.valid {
			t.Errorf("%s: ValidateData = %v, want valid %v", c.name, err, c.valid)
		}
	}
}

// FuzzConformsAgreesWithSchema holds the fast check to the general
// validator: whatever it proves valid, jsonschema must accept, with the
// same campaign id.
func FuzzConformsAgreesWithSchema(f *testing.F) {
	samples := sampleJSON(f)
	for i, k := range Kinds {
		f.Add(uint8(i), samples[k.Type])
	}
	sf := string(samples[KindSellerFound.Type])
	f.Add(uint8(2), []byte(strings.Replace(sf, `"trust":"verified"`, `"trust":"verified\u0000"`, 1)))
	f.Add(uint8(2), []byte(strings.Replace(sf, `"name":"Euro € Seller 😀"`, `"name":"\xff\xfe"`, 1)))
	f.Add(uint8(2), []byte(strings.Replace(sf, `"campaign_id":"c-1"`, `"campaign_id":"c\u002d1"`, 1)))
	f.Add(uint8(0), []byte(`{"campaign_id":"c-1","brief":{},"buyer":{},"requested_at":"x"}`))
	f.Fuzz(func(t *testing.T, ki uint8, data []byte) {
		k := Kinds[int(ki)%len(Kinds)]
		cid, has, ok := Conforms(k, data)
		if !ok {
			return
		}
		inst, err := ValidateDataValue(k, data)
		if err != nil {
			t.Fatalf("%s: Conforms proved %q, the schema refuses it: %v", k.Name, data, err)
		}
		top, _ := inst.(map[string]any)
		v, present := top["campaign_id"]
		s, _ := v.(string)
		if present != has || s != cid {
			t.Fatalf("%s: campaign id (%q, %v), the decoded payload has (%q, %v)", k.Name, cid, has, s, present)
		}
	})
}

// manyKeys is n string members "k0":"v",... followed by a comma.
func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"k%d":"v",`, i)
	}
	return b.String()
}

// BenchmarkSchemaCheck compares the two tiers on a PackageFound as the
// kitfetcher emits it: Conforms (one pass over the bytes) and the general
// validator (decode, then jsonschema).
func BenchmarkSchemaCheck(b *testing.B) {
	data := sampleJSON(b)[KindPackageFound.Type]
	b.Run("conforms", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, _, ok := Conforms(KindPackageFound, data); !ok {
				b.Fatal("not proven")
			}
		}
	})
	b.Run("jsonschema", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := ValidateDataValue(KindPackageFound, data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
