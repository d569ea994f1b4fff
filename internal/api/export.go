package api

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"

	"github.com/dealflow/dealflow/pkg/events"
)

// DealsCSVHeader is the header row of GET /bookings/{id}/deals.csv: dollar
// columns (two decimals, half to even from the micros) with the exact micros
// beside them.
var DealsCSVHeader = []string{"seller", "seller_url", "protocol", "package_id", "deal_id", "media_buy_id", "deal_type", "cpm", "cpm_micros",
	"impressions", "spend", "spend_micros", "flight_start", "flight_end"}

// dealsCSV answers the campaign's booked deals as CSV (RFC 4180 quoting),
// read from the campaign store like GET /bookings/{id}.
func (a *server) dealsCSV(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(w, id) {
		return
	}
	c, err := a.campaigns.Get(r.Context(), id)
	if err != nil {
		a.storeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`-deals.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write(DealsCSVHeader)
	for _, d := range c.Deals {
		seller := d.SellerName
		if seller == "" {
			seller = d.SellerURL
		}
		_ = cw.Write([]string{cell(seller), cell(d.SellerURL), string(d.Protocol.Or()), cell(d.PackageID), cell(d.DealID), cell(d.MediaBuyID),
			cell(d.DealType), d.CPMMicros.Cents(), micros(d.CPMMicros), strconv.FormatInt(d.Impressions, 10), d.SpendMicros.Cents(),
			micros(d.SpendMicros), cell(d.FlightStart), cell(d.FlightEnd)})
	}
	cw.Flush()
}

// cell defuses a seller-supplied text cell that a spreadsheet would run as
// a formula (leading =, +, -, @, tab or carriage return).
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func micros(m events.Micros) string { return strconv.FormatInt(int64(m), 10) }
