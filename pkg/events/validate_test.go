package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// fullSamples is samplePayloads with every optional enum set and every list
// that holds an enum or a campaign_id given an item, so that each enum and
// pattern of the schemas is present in some sample.
func fullSamples() map[string]any {
	s := samplePayloads()
	sf := s[KindSellerFound.Type].(SellerFound)
	sf.Seller.Protocol = ProtocolADCP
	s[KindSellerFound.Type] = sf
	pf := s[KindPackageFound.Type].(PackageFound)
	pf.Seller.Protocol = ProtocolIAB
	s[KindPackageFound.Type] = pf
	q := s[KindQuoteReady.Type].(QuoteReady)
	q.Seller.Protocol = ProtocolADCP
	s[KindQuoteReady.Type] = q
	sk := s[KindSellerSkipped.Type].(SellerSkipped)
	sk.Protocol, sk.Trust = ProtocolIAB, TrustUnknown
	s[KindSellerSkipped.Type] = sk
	pp := s[KindPortfolioProposed.Type].(PortfolioProposed)
	pp.Lines[0].Protocol = ProtocolADCP
	s[KindPortfolioProposed.Type] = pp
	pa := s[KindPortfolioApproved.Type].(PortfolioApproved)
	pa.Lines = []PlanLine{pp.Lines[0]}
	s[KindPortfolioApproved.Type] = pa
	d := s[KindDealBooked.Type].(DealBooked)
	d.Protocol = ProtocolIAB
	s[KindDealBooked.Type] = d
	bf := s[KindBookingFailed.Type].(BookingFailed)
	bf.Protocol = ProtocolADCP
	s[KindBookingFailed.Type] = bf
	dr := s[KindDeliveryReported.Type].(DeliveryReported)
	dr.Protocol = ProtocolIAB
	s[KindDeliveryReported.Type] = dr
	pd := s[KindPacingDeviation.Type].(PacingDeviation)
	pd.Protocol = ProtocolADCP
	s[KindPacingDeviation.Type] = pd
	lc := s[KindLineChanged.Type].(LineChanged)
	lc.Protocol, lc.RequestedBy = ProtocolIAB, RequestedByReallocation
	s[KindLineChanged.Type] = lc
	lf := s[KindLineChangeFailed.Type].(LineChangeFailed)
	lf.Protocol, lf.RequestedBy = ProtocolADCP, RequestedByAPI
	s[KindLineChangeFailed.Type] = lf
	lp := s[KindLinePaused.Type].(LinePaused)
	lp.Protocol, lp.RequestedBy = ProtocolADCP, RequestedByAPI
	s[KindLinePaused.Type] = lp
	lr := s[KindLineResumed.Type].(LineResumed)
	lr.Protocol, lr.RequestedBy = ProtocolADCP, RequestedByAPI
	s[KindLineResumed.Type] = lr
	dc := s[KindDealCancelled.Type].(DealCancelled)
	dc.Protocol, dc.RequestedBy = ProtocolIAB, RequestedByAPI
	s[KindDealCancelled.Type] = dc
	cc := s[KindCampaignCompleted.Type].(CampaignCompleted)
	cc.Deals, cc.Failed, cc.Unresolved = []DealBooked{d}, []BookingFailed{bf}, []BookingFailed{bf}
	s[KindCampaignCompleted.Type] = cc
	return s
}

// constrained lists the JSON paths ("seller.trust", "deals[0].tier") that
// carry an enum or a pattern in the schema s, and whether each is required.
func constrained(s map[string]any, path string, required bool, out map[string]bool) {
	if _, ok := s["enum"]; ok {
		out[path] = required
	}
	if _, ok := s["pattern"]; ok {
		out[path] = required
	}
	if items, ok := s["items"].(map[string]any); ok {
		constrained(items, path+"[0]", true, out)
	}
	props, _ := s["properties"].(map[string]any)
	req := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, n := range r {
			req[n.(string)] = true
		}
	}
	for name, p := range props {
		constrained(p.(map[string]any), at(path, name), req[name], out)
	}
}

// setAt sets the member at path ("a.b[0].c") of a decoded JSON document.
func setAt(t *testing.T, doc any, path string, v any) {
	t.Helper()
	parts := strings.Split(path, ".")
	for i, part := range parts {
		name, idx, _ := strings.Cut(part, "[")
		obj, ok := doc.(map[string]any)
		if !ok {
			t.Fatalf("%s: %s is not an object in the sample", path, name)
		}
		if i == len(parts)-1 && idx == "" {
			obj[name] = v
			return
		}
		doc = obj[name]
		if idx != "" {
			n, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			list, ok := doc.([]any)
			if !ok || len(list) <= n {
				t.Fatalf("%s: the sample has no %s[%d]; give it one (fullSamples)", path, name, n)
			}
			if i == len(parts)-1 {
				list[n] = v
				return
			}
			doc = list[n]
		}
	}
}

// pointer renders a FieldError path as the schema error's JSON pointer.
func pointer(field string) string {
	r := strings.NewReplacer(".", "/", "[", "/", "]", "")
	return "/" + r.Replace(field)
}

// variant is a sample payload of k with v at path, decoded into k's type.
func variant(t *testing.T, k Kind, sample any, path string, v any) any {
	t.Helper()
	b, err := json.Marshal(sample)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	setAt(t, doc, path, v)
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	p := k.NewPayload()
	if err := json.Unmarshal(b, p); err != nil {
		t.Fatalf("%s %s: %v", k.Name, path, err)
	}
	return p
}

// verdicts are the schema's and Validate's verdicts on a payload value, and
// the value's encoding.
type verdicts struct {
	schema, validate error
	encoded          []byte
}

func judge(t testing.TB, k Kind, p any) verdicts {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return verdicts{ValidateData(k, b), p.(payload).Validate(), b}
}

// TestValidateCoversEveryEnumAndPattern: every sample is valid for both its
// schema and Validate; each enum and pattern of every schema, given a value
// it refuses, is refused by Validate too, naming that field; an empty value
// is refused by both where the member is required and accepted by both
// where encoding/json leaves it out.
func TestValidateCoversEveryEnumAndPattern(t *testing.T) {
	t.Parallel()
	samples := fullSamples()
	total := 0
	for _, k := range Kinds {
		sample := samples[k.Type]
		if v := judge(t, k, sample); v.schema != nil || v.validate != nil {
			t.Fatalf("%s: sample %s: schema %v, Validate %v", k.Name, v.encoded, v.schema, v.validate)
		}
		raw, err := SchemaFS.ReadFile("schemas/" + k.SchemaFile())
		if err != nil {
			t.Fatal(err)
		}
		var schema map[string]any
		if err := json.Unmarshal(raw, &schema); err != nil {
			t.Fatal(err)
		}
		paths := map[string]bool{}
		constrained(schema, "", true, paths)
		names := make([]string, 0, len(paths))
		for p := range paths {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, path := range names {
			total++
			v := judge(t, k, variant(t, k, sample, path, "not valid!"))
			fe, ok := AsFieldError(v.validate)
			if v.schema == nil || !ok || fe.Field != path {
				t.Errorf("%s %s: %s: schema %v, Validate %v (want a FieldError for %s)", k.Name, path, v.encoded, v.schema, v.validate, path)
			}
			v = judge(t, k, variant(t, k, sample, path, ""))
			if (v.schema == nil) != (v.validate == nil) {
				t.Errorf("%s %s empty: %s: schema %v, Validate %v", k.Name, path, v.encoded, v.schema, v.validate)
			}
		}
	}
	// A campaign_id in every kind and in CampaignCompleted's deals, failed
	// and unresolved; 35 enums (tiers, trusts, protocols, the campaign
	// status, two buyer seat statuses, the pacing status and the deviation
	// direction; the line changes' action, requester, state and protocols;
	// a reallocation's direction and its changes' actions).
	if want := len(Kinds) + 3 + 53; total != want {
		t.Errorf("%d enums and patterns checked, want %d: a schema gained or lost one; check Validate", total, want)
	}
}

// FuzzValidateAgreesWithSchema holds every payload type's Validate to its
// schema: for any value of the type (decoded from the fuzzed JSON), the
// schema accepts the value's encoding exactly when Validate accepts the
// value, and Validate names a field the schema names.
func FuzzValidateAgreesWithSchema(f *testing.F) {
	samples := fullSamples()
	for i, k := range Kinds {
		b, err := json.Marshal(samples[k.Type])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	seeds := []struct {
		k         Kind
		from, to  string
		appendNew bool
	}{
		{KindSellerFound, `"trust":"verified"`, `"trust":"approved"`, false},
		{KindSellerFound, `"tier":"agency"`, `"tier":"AGENCY"`, false},
		{KindSellerFound, `"tier":"agency"`, `"tier":""`, false},
		{KindSellerFound, `"protocol":"adcp"`, `"protocol":""`, false},
		{KindSellerFound, `"campaign_id":"c-1"`, `"campaign_id":"c 1"`, false},
		{KindSellerFound, `"campaign_id":"c-1"`, `"campaign_id":""`, false},
		{KindSellerFound, `"campaign_id":"c-1"`, `"campaign_id":"c\u00e9"`, false},
		{KindSellerFound, `"campaign_id":"c-1"`, `"campaign_id":"` + strings.Repeat("x", 65) + `"`, false},
		{KindSellerFound, `"campaign_id":"c-1"`, `"campaign_id":"` + strings.Repeat("x", 64) + `"`, false},
		{KindSellerSkipped, `"trust":"unknown"`, `"trust":""`, false},
		{KindQuoteReady, `"tier":"agency"`, `"tier":"public\n"`, false},
		{KindCampaignCompleted, `"status":"completed"`, `"status":"done"`, false},
		{KindCampaignCompleted, `"status":"completed"`, `"status":""`, false},
		{KindPortfolioApproved, `"tier":"agency"`, `"tier":""`, false},
	}
	for _, s := range seeds {
		b, _ := json.Marshal(samples[s.k.Type])
		mut := bytes.Replace(b, []byte(s.from), []byte(s.to), 1)
		if bytes.Equal(mut, b) {
			f.Fatalf("seed %s %s: no %s in the sample", s.k.Name, s.to, s.from)
		}
		f.Add(uint8(kindIndex(s.k)), mut)
	}
	f.Fuzz(func(t *testing.T, ki uint8, data []byte) {
		k := Kinds[int(ki)%len(Kinds)]
		p := k.NewPayload()
		if json.Unmarshal(data, p) != nil {
			return
		}
		v := judge(t, k, p)
		if (v.schema == nil) != (v.validate == nil) {
			t.Fatalf("%s %s: schema %v, Validate %v", k.Name, v.encoded, v.schema, v.validate)
		}
		if v.validate == nil {
			return
		}
		fe, ok := AsFieldError(v.validate)
		se, _ := AsSchemaError(v.schema)
		if !ok || se == nil || !strings.Contains(se.Detail, pointer(fe.Field)+": ") {
			t.Fatalf("%s %s: Validate names %v, the schema %v", k.Name, v.encoded, v.validate, v.schema)
		}
	})
}

func kindIndex(k Kind) int {
	for i, x := range Kinds {
		if x.Type == k.Type {
			return i
		}
	}
	panic(fmt.Sprintf("no kind %s", k.Name))
}
