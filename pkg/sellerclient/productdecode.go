package sellerclient

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// A seller's catalog is the largest body the buyer reads (about 700 bytes a
// product), once per seller and catalog TTL; decoding it through
// encoding/json's reflection was about a third of the CPU of a campaign's
// first media-kit fetch. decodeProductPage decodes the common, plainly
// written page directly: known keys spelled exactly and once each, strings
// without escapes, numbers that parse, null where a field allows it.
// Anything else (a key in another case, an escape, a duplicate, a type
// mismatch, invalid JSON) sends the whole page through encoding/json, so
// every page decodes exactly as decodeObject would decode it; the fuzz
// target FuzzProductPageMatchesReference holds the two together. Packages
// (fastPackage, below) are decoded the same way within a package list,
// falling back to Package.UnmarshalJSON, under
// FuzzPackageListMatchesReference.

// decodeProductPage decodes a GET /products page into pg, as
// decodeObject(b, pg) would.
func decodeProductPage(b []byte, pg *productPage) error {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && t[0] == '{' && json.Valid(t) {
		var fast productPage
		if fastProductPage(t, &fast) {
			*pg = fast
			return nil
		}
	}
	return decodeObject(b, pg)
}

// fastProductPage decodes the valid JSON object b, or reports false when
// it needs encoding/json.
func fastProductPage(b []byte, pg *productPage) bool {
	return fastObject(b, pageFields, func(f int, v []byte) bool {
		switch f {
		case 0:
			return fastProducts(v, &pg.Products)
		case 1:
			return fastInt(v, &pg.TotalCount)
		case 2:
			return fastInt(v, &pg.Limit)
		default:
			return fastInt(v, &pg.Offset)
		}
	})
}

// The JSON names of the fields of productPage, Product, ProductExt and
// Money, in the order the decoders' switches take them.
var (
	pageFields    = []string{"products", "total_count", "limit", "offset"}
	productFields = []string{"product_id", "name", "description", "base_price", "pricing_model", "delivery_type", "ad_formats", "available_impressions", "ext"}
	extFields     = []string{"inventory_type", "floor_cpm", "minimum_impressions", "deal_types"}
	moneyFields   = []string{"amount_micros", "currency"}
)

// fastObject walks the object b and calls set with each member that sets
// a field: the field's index in names and the raw value. Members no field
// takes are skipped. It reports false when b is no object, when
// encoding/json must decide a key (see plainKey) or when set reports false.
func fastObject(b []byte, names []string, set func(field int, v []byte) bool) bool {
	if b[0] != '{' {
		return false
	}
	var seen [32]bool // the most fields any decoded type has, and then some
	ok := true
	err := eachMember(b, func(k, v []byte) bool {
		switch f := plainKey(k, seen[:len(names)], names); {
		case f == -1:
		case f < 0:
			ok = false
		default:
			ok = set(f, v)
		}
		return ok
	})
	return ok && err == nil
}

// fastProducts decodes a products array (null leaves it nil), sized by
// counting "product_id" keys (a vectorised search, not a walk; a key
// elsewhere only makes it roomier).
func fastProducts(v []byte, out *[]Product) bool {
	return fastArray(v, out, bytes.Count(v, []byte(`"product_id"`)), fastProduct)
}

// fastProduct decodes one product object.
func fastProduct(b []byte, p *Product) bool {
	return fastObject(b, productFields, func(f int, v []byte) bool {
		switch f {
		case 0:
			return fastString(v, &p.ProductID)
		case 1:
			return fastString(v, &p.Name)
		case 2:
			return fastString(v, &p.Description)
		case 3:
			return fastMoney(v, &p.BasePrice)
		case 4:
			return fastString(v, &p.PricingModel)
		case 5:
			return fastString(v, &p.DeliveryType)
		case 6:
			return fastStrings(v, &p.AdFormats)
		case 7:
			return fastInt64Ptr(v, &p.AvailableImpressions)
		default:
			return fastProductExt(v, &p.Ext)
		}
	})
}

// fastProductExt decodes a product's ext object (null leaves it as is).
func fastProductExt(b []byte, x *ProductExt) bool {
	if isNullLiteral(b) {
		return true
	}
	return fastObject(b, extFields, func(f int, v []byte) bool {
		switch f {
		case 0:
			return fastString(v, &x.InventoryType)
		case 1:
			return fastFloat64Ptr(v, &x.FloorCPM)
		case 2:
			return fastInt(v, &x.MinimumImpressions)
		default:
			return fastStrings(v, &x.DealTypes)
		}
	})
}

// fastMoney decodes base_price: null leaves it nil; an object of a plain
// integer amount_micros and a plain (or null) currency is set directly, as
// Money.UnmarshalJSON would; any other value goes to Money.UnmarshalJSON,
// as encoding/json would send it, and its error to encoding/json.
func fastMoney(v []byte, out **Money) bool {
	if isNullLiteral(v) {
		*out = nil
		return true
	}
	m := new(Money)
	if !fastMoneyObject(v, m) {
		if m.UnmarshalJSON(v) != nil {
			return false
		}
	}
	*out = m
	return true
}

func fastMoneyObject(b []byte, m *Money) bool {
	var amount int64
	hasAmount, currency := false, "USD"
	ok := fastObject(b, moneyFields, func(f int, v []byte) bool {
		if f == 0 {
			n, err := parseStrictInt(string(v))
			amount, hasAmount = n, err == nil
			return hasAmount
		}
		if isNullLiteral(v) {
			return true
		}
		var c string
		if !fastString(v, &c) {
			return false
		}
		if c != "" {
			currency = c
		}
		return true
	})
	if !ok || !hasAmount {
		return false
	}
	m.AmountMicros, m.Currency = amount, currency
	return true
}

// plainKey returns the index of the field among names that the quoted key
// k sets, -1 when it sets none, or -2 when encoding/json must decide: a
// key with an escape, a key that matches a field only ignoring case, or a
// field's second key.
func plainKey(k []byte, seen []bool, names []string) int {
	inner := k[1 : len(k)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		return -2
	}
	for i, n := range names {
		if string(inner) == n {
			if seen[i] {
				return -2
			}
			seen[i] = true
			return i
		}
		if bytes.EqualFold(inner, []byte(n)) {
			return -2
		}
	}
	return -1
}

// isNullLiteral reports whether v is the JSON literal null.
func isNullLiteral(v []byte) bool { return string(v) == "null" }

// fastString sets a string field from a plain string; null leaves it as is.
func fastString(v []byte, out *string) bool {
	if isNullLiteral(v) {
		return true
	}
	if v[0] != '"' {
		return false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return false
	}
	*out = string(inner)
	return true
}

// fastStrings sets a []string field from an array of plain strings; null
// sets nil, [] an empty slice.
func fastStrings(v []byte, out *[]string) bool {
	return fastArray(v, out, -1, fastString)
}

// fastArray sets a slice field from an array each of whose elements elem
// decodes, straight into its place in the slice (capacity capHint, or the
// elements counted when it is negative); null sets nil, [] an empty slice.
// A null element is encoding/json's to decide.
func fastArray[T any](v []byte, out *[]T, capHint int, elem func(e []byte, x *T) bool) bool {
	if isNullLiteral(v) {
		*out = nil
		return true
	}
	if v[0] != '[' {
		return false
	}
	if capHint < 0 {
		capHint = 0
		if eachElement(v, func([]byte) error { capHint++; return nil }) != nil {
			return false
		}
	}
	s := make([]T, 0, capHint)
	err := eachElement(v, func(e []byte) error {
		var zero T
		s = append(s, zero)
		if isNullLiteral(e) || !elem(e, &s[len(s)-1]) {
			return errNotValidJSON
		}
		return nil
	})
	if err != nil {
		return false
	}
	*out = s
	return true
}

// fastInt sets an int or int64 field from a number that parses as one
// (as encoding/json does: base 10, in range); null leaves it as is.
func fastInt[T int | int64](v []byte, out *T) bool {
	if isNullLiteral(v) {
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || int64(T(n)) != n {
		return false
	}
	*out = T(n)
	return true
}

// fastInt64Ptr sets a *int64 field: null sets nil.
func fastInt64Ptr(v []byte, out **int64) bool {
	if isNullLiteral(v) {
		*out = nil
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return false
	}
	*out = &n
	return true
}

// fastFloat64Ptr sets a *float64 field from a number: null sets nil.
func fastFloat64Ptr(v []byte, out **float64) bool {
	if isNullLiteral(v) {
		*out = nil
		return true
	}
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		return false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return false
	}
	*out = &f
	return true
}

// packageFields are the JSON names of Package's decoded fields, in the
// order fastPackage's switch takes them (Authenticated is derived).
var packageFields = []string{"package_id", "name", "description", "ad_formats", "device_types", "cat", "cattax", "geo_targets", "tags",
	"price_range", "rate_type", "is_featured", "audience_capabilities", "exact_price", "floor_price", "currency", "placements",
	"negotiation_enabled", "volume_discounts_available"}

// placementFields are Placement's JSON names, in field order.
var placementFields = []string{"product_id", "product_name", "ad_formats", "device_types", "weight"}

// fastPackage decodes one package of a valid package list the way
// Package.UnmarshalJSON does, defaults included, when it is plainly written
// (see decodeProductPage); it reports false, leaving p to be decoded again
// from scratch, when Package.UnmarshalJSON must decide.
func fastPackage(b []byte, p *Package) bool {
	var cattax, placements []byte
	ok := fastObject(b, packageFields, func(f int, v []byte) bool {
		switch f {
		case 0:
			return fastString(v, &p.PackageID)
		case 1:
			return fastString(v, &p.Name)
		case 2:
			return fastString(v, &p.Description)
		case 3:
			return fastStrings(v, &p.AdFormats)
		case 4:
			return fastInts(v, &p.DeviceTypes)
		case 5:
			return fastStrings(v, &p.Cat)
		case 6:
			cattax = v
			return true
		case 7:
			return fastStrings(v, &p.GeoTargets)
		case 8:
			return fastStrings(v, &p.Tags)
		case 9:
			return fastString(v, &p.PriceRange)
		case 10:
			return fastString(v, &p.RateType)
		case 11:
			return fastBool(v, &p.IsFeatured)
		case 12:
			if !isNullLiteral(v) {
				p.AudienceCapabilities = append(json.RawMessage(nil), v...)
			}
			return true
		case 13:
			p.Authenticated = true // the key is there, even with null
			return fastFloat64Ptr(v, &p.ExactPrice)
		case 14:
			return fastFloat64Ptr(v, &p.FloorPrice)
		case 15:
			return fastString(v, &p.Currency)
		case 16:
			placements = v
			return true
		case 17:
			return fastBool(v, &p.NegotiationEnabled)
		default:
			return fastBool(v, &p.VolumeDiscountsAvailable)
		}
	})
	if !ok {
		return false
	}
	p.Cattax = 2 // AdCOM default taxonomy, as Package.UnmarshalJSON sets it
	if cattax != nil && !isNullLiteral(cattax) {
		var n flexInt
		if n.UnmarshalJSON(cattax) != nil {
			return false
		}
		p.Cattax = int(n)
	}
	if placements != nil && !fastPlacements(placements, &p.Placements) {
		return false
	}
	if p.RateType == "" {
		p.RateType = "cpm"
	}
	if p.Authenticated && p.Currency == "" {
		p.Currency = "USD"
	}
	return true
}

// fastPlacements decodes a placements array (null leaves it nil), each
// placement with the seller's default weight of 1.0.
func fastPlacements(v []byte, out *[]Placement) bool {
	return fastArray(v, out, -1, func(e []byte, pl *Placement) bool {
		var weight *float64
		ok := fastObject(e, placementFields, func(f int, v []byte) bool {
			switch f {
			case 0:
				return fastString(v, &pl.ProductID)
			case 1:
				return fastString(v, &pl.ProductName)
			case 2:
				return fastStrings(v, &pl.AdFormats)
			case 3:
				return fastInts(v, &pl.DeviceTypes)
			default:
				return fastFloat64Ptr(v, &weight)
			}
		})
		pl.Weight = 1.0
		if weight != nil {
			pl.Weight = *weight
		}
		return ok
	})
}

// fastInts sets an []int field from an array of integers; null sets nil,
// [] an empty slice.
func fastInts(v []byte, out *[]int) bool {
	return fastArray(v, out, -1, fastInt[int])
}

// fastBool sets a bool field from true or false; null leaves it as is.
func fastBool(v []byte, out *bool) bool {
	switch string(v) {
	case "true":
		*out = true
	case "false":
		*out = false
	case "null":
	default:
		return false
	}
	return true
}
