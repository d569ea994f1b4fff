package sellerclient

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/dealflow/dealflow/pkg/market"
)

// goldenVector is one conformance vector of an IAB primitives fixture.
type goldenVector struct {
	Name          string          `json:"name"`
	Mode          string          `json:"mode"` // valid | must_ignore | invalid
	Data          json.RawMessage `json:"data"`
	Expected      json.RawMessage `json:"expected"`
	ExpectedError string          `json:"expected_error"`
}

func loadGolden(t testing.TB, rel string) []goldenVector {
	t.Helper()
	b, err := readFixture(t, rel)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []goldenVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatalf("%s: no vectors", rel)
	}
	return f.Vectors
}

// equivJSON compares two generic JSON trees, treating an absent key and a
// null value as the same (the client omits null optionals). It reports every
// difference with its path.
func equivJSON(path string, ours, golden any, diffs *[]string) {
	if ours == nil && golden == nil {
		return
	}
	switch g := golden.(type) {
	case map[string]any:
		o, ok := ours.(map[string]any)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s: ours %v, golden object", path, ours))
			return
		}
		keys := map[string]bool{}
		for k := range g {
			keys[k] = true
		}
		for k := range o {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			equivJSON(path+"."+k, o[k], g[k], diffs)
		}
	case []any:
		o, ok := ours.([]any)
		if !ok || len(o) != len(g) {
			*diffs = append(*diffs, fmt.Sprintf("%s: ours %v, golden %v", path, ours, golden))
			return
		}
		for i := range g {
			equivJSON(fmt.Sprintf("%s[%d]", path, i), o[i], g[i], diffs)
		}
	default:
		if !reflect.DeepEqual(ours, golden) {
			*diffs = append(*diffs, fmt.Sprintf("%s: ours %v, golden %v", path, ours, golden))
		}
	}
}

// roundTrip decodes data into a fresh value from newV, re-encodes it and
// compares it with want (null ≡ absent).
func roundTrip(t *testing.T, name string, data, want json.RawMessage, newV func() any) any {
	t.Helper()
	v := newV()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: decode: %v", name, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: encode: %v", name, err)
	}
	var ours, golden any
	_ = json.Unmarshal(out, &ours)
	_ = json.Unmarshal(want, &golden)
	var diffs []string
	equivJSON("$", ours, golden, &diffs)
	if len(diffs) > 0 {
		t.Errorf("%s: round trip lost or changed fields:\n  %s", name, strings.Join(diffs, "\n  "))
	}
	return v
}

// checkVectors runs every vector of a fixture through decode/re-encode; invalid
// vectors must be refused by decode or by reject (the client-side validation).
func checkVectors(t *testing.T, rel string, newV func() any, reject func(any) error) int {
	t.Helper()
	n := 0
	for _, v := range loadGolden(t, rel) {
		switch v.Mode {
		case "valid":
			roundTrip(t, rel+"/"+v.Name, v.Data, v.Data, newV)
			n++
		case "must_ignore":
			roundTrip(t, rel+"/"+v.Name, v.Data, v.Expected, newV)
			n++
		case "invalid":
			x := newV()
			err := json.Unmarshal(v.Data, x)
			if err == nil && reject != nil {
				err = reject(x)
			}
			if err == nil {
				t.Errorf("%s/%s: invalid vector accepted (%s)", rel, v.Name, v.ExpectedError)
			}
		default:
			t.Errorf("%s/%s: unknown mode %q", rel, v.Name, v.Mode)
		}
	}
	return n
}

func TestGoldenProtocolResponses(t *testing.T) {
	t.Parallel()
	type quoteEnvelope struct {
		Quote Quote `json:"quote"`
	}
	if n := checkVectors(t, "protocol/QuoteResponse.golden.json", func() any { return new(quoteEnvelope) }, nil); n != 3 {
		t.Fatalf("QuoteResponse vectors %d", n)
	}
	checkVectors(t, "protocol/DealBookingResponse.golden.json", func() any { return new(DealBooking) }, nil)
	checkVectors(t, "protocol/NegotiationRoundResponse.golden.json", func() any { return new(NegotiationRound) }, nil)
	checkVectors(t, "primitives/Quote.golden.json", func() any { return new(Quote) }, nil)
	checkVectors(t, "primitives/Deal.golden.json", func() any { return new(Deal) }, nil)

	// The parse functions the client uses agree with plain decoding, and pick
	// the right values.
	for _, v := range loadGolden(t, "protocol/QuoteResponse.golden.json") {
		q, err := parseQuote(v.Data)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if v.Name == "digital_quote" && (q.Pricing.FinalCPM.AmountMicros != 22500000 || q.BuyerTier != market.TierAdvertiser ||
			*q.Terms.Impressions != 1000000 || q.Availability.EstimatedFillRate == nil || *q.Availability.EstimatedFillRate != 0.95) {
			t.Fatalf("digital quote %+v", q)
		}
		if v.Name == "linear_tv_quote" && (q.Pricing.BaseCPM != nil || q.Pricing.FinalCPP.AmountMicros != 450000000 || *q.Terms.GRPs != 120 || q.Availability != nil) {
			t.Fatalf("linear tv quote %+v", q)
		}
	}
	for _, v := range loadGolden(t, "protocol/DealBookingResponse.golden.json") {
		b, err := parseDealBooking(v.Data)
		if err != nil || b.Deal.OpenRTBParams.BidFloor.AmountMicros != 22500000 || b.Deal.OpenRTBParams.At != 3 || b.Deal.ExpiresAt != nil {
			t.Fatalf("%s: %+v %v", v.Name, b, err)
		}
		if v.Name == "booked_with_audience_snapshot" && !strings.Contains(string(b.AudienceMatchSummary), `"reach"`) {
			t.Fatalf("summary %s", b.AudienceMatchSummary)
		}
	}
	for _, v := range loadGolden(t, "protocol/NegotiationRoundResponse.golden.json") {
		r, err := parseNegotiation(v.Data)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if v.Name == "accepted_terminal" && (r.RoundsRemaining != nil || r.Status != NegotiationAccepted || r.Round.CumulativeConcessionPct != 0.12) {
			t.Fatalf("%+v", r)
		}
	}
}

func TestGoldenProtocolRequests(t *testing.T) {
	t.Parallel()
	checkVectors(t, "protocol/QuoteRequest.golden.json", func() any { return new(QuoteRequest) },
		func(x any) error { return x.(*QuoteRequest).normalize() })
	checkVectors(t, "protocol/DealBookingRequest.golden.json", func() any { return new(DealBookingRequest) },
		func(x any) error { return x.(*DealBookingRequest).normalize() })
	checkVectors(t, "protocol/NegotiationMessage.golden.json", func() any { return new(NegotiationMessage) },
		func(x any) error { return x.(*NegotiationMessage).normalize() })

	// Valid contract vectors pass the client's validation, except the ones
	// that continue by negotiation_id alone: the real seller 404s those, so the
	// client refuses them on purpose.
	for _, v := range loadGolden(t, "protocol/NegotiationMessage.golden.json") {
		if v.Mode != "valid" {
			if v.Name == "reject_with_price" {
				var m NegotiationMessage
				_ = json.Unmarshal(v.Data, &m)
				if err := m.normalize(); err == nil || !strings.Contains(err.Error(), v.ExpectedError) {
					t.Errorf("reject_with_price: %v", err)
				}
			}
			continue
		}
		var m NegotiationMessage
		if err := json.Unmarshal(v.Data, &m); err != nil {
			t.Fatal(err)
		}
		err := m.normalize()
		if (m.NegotiationID != "" && m.ProposalID == "") != (err != nil) {
			t.Errorf("%s: normalize = %v", v.Name, err)
		}
	}
	for _, rel := range []string{"protocol/QuoteRequest.golden.json", "protocol/DealBookingRequest.golden.json"} {
		for _, v := range loadGolden(t, rel) {
			if v.Mode == "invalid" {
				continue
			}
			var err error
			if strings.Contains(rel, "Quote") {
				var r QuoteRequest
				_ = json.Unmarshal(v.Data, &r)
				err = r.normalize()
			} else {
				var r DealBookingRequest
				_ = json.Unmarshal(v.Data, &r)
				err = r.normalize()
			}
			if err != nil {
				t.Errorf("%s/%s: valid vector refused: %v", rel, v.Name, err)
			}
		}
	}
}

func TestGoldenErrorEnvelope(t *testing.T) {
	t.Parallel()
	for _, v := range loadGolden(t, "protocol/ErrorEnvelope.golden.json") {
		e := parseError(400, v.Data)
		var want struct {
			Detail struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			} `json:"detail"`
		}
		_ = json.Unmarshal(v.Data, &want)
		if e.Code != want.Detail.Error || e.Message != want.Detail.Message || !strings.Contains(string(e.Detail), `"unsupported"`) {
			t.Errorf("%s: %+v", v.Name, e)
		}
	}
	e := parseError(400, loadGolden(t, "protocol/ErrorEnvelope.golden.json")[0].Data)
	if !isAll(e, ErrUnsupported, ErrValidation) {
		t.Fatalf("classification %v", e)
	}
}

func TestGoldenAgentCardsAndTrust(t *testing.T) {
	t.Parallel()
	for _, v := range loadGolden(t, "primitives/Agent.golden.json") {
		card, err := parseAgentCard(bodyOf(v.Data))
		if err != nil || card.AgentID == "" || card.Provider == nil || len(card.Capabilities.Protocols) != 1 || card.Capabilities.Protocols[0] != "a2a" {
			t.Errorf("%s: %+v %v", v.Name, card, err)
		}
	}
	for _, v := range loadGolden(t, "protocol/AgentTrustVerification.golden.json") {
		ti, err := parseVerify(bodyOf(v.Data), "https://x.example.com")
		if err != nil {
			t.Fatal(err)
		}
		switch v.Name {
		case "approved_by_registry":
			if !ti.IsRegistered || ti.Trust != market.TrustVerified || ti.RegistryID != "iab_aamp" {
				t.Errorf("%+v", ti)
			}
		case "unknown_unregistered":
			if ti.IsRegistered || ti.Trust != market.TrustUnknown || ti.RegistryID != "" {
				t.Errorf("%+v", ti)
			}
		}
	}
}

func isAll(err error, targets ...error) bool {
	for _, t := range targets {
		if !errorsIs(err, t) {
			return false
		}
	}
	return true
}

func TestEquivJSONDetectsLoss(t *testing.T) {
	t.Parallel()
	var diffs []string
	var a, b any
	_ = json.Unmarshal([]byte(`{"x":1,"y":null,"z":[1,2]}`), &a)
	_ = json.Unmarshal([]byte(`{"x":1,"z":[1,2],"w":null}`), &b)
	equivJSON("$", a, b, &diffs)
	if len(diffs) != 0 {
		t.Fatalf("null/absent must be equal: %v", diffs)
	}
	_ = json.Unmarshal([]byte(`{"x":1,"q":"lost","z":[1,3]}`), &b)
	equivJSON("$", a, b, &diffs)
	if len(diffs) != 2 || !strings.Contains(diffs[0], "$.q") || !strings.Contains(diffs[1], "$.z[1]") {
		t.Fatalf("diffs %v", diffs)
	}
}
