// Package engine is the sandbox seller's pure pricing and negotiation logic.
//
// It reproduces the IAB Tech Lab seller-agent's PricingRulesEngine and
// NegotiationEngine (seller-protocol.md §1.4, §3, §4) number for number, so a
// buyer tested against the sandbox sees exactly the prices, counters and
// rationale strings the real seller would produce. There is no I/O here: the
// HTTP sandbox (package sandbox) wraps it.
//
// Every float computation follows Python's operation order on float64
// variables, and rounding goes through strconv like Python's round(x, n),
// because constant folding or math.Round(x*100)/100 give different cents
// (29.625 → 29.62 in Python, 29.63 with math.Round).
package engine

import (
	"math"
	"strconv"
)

// PyRound is Python's round(x, ndigits) for ndigits >= 0: the correctly rounded
// decimal, ties to even on the exact binary value.
func PyRound(x float64, ndigits int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v, err := strconv.ParseFloat(strconv.FormatFloat(x, 'f', ndigits, 64), 64)
	if err != nil {
		// FormatFloat output always parses; keep the input rather than panic.
		return x
	}
	return v
}

// Round2 is Python's round(x, 2), the seller's price rounding.
func Round2(x float64) float64 { return PyRound(x, 2) }

// Fmt2 formats like Python's "%.2f" / f"{x:.2f}" (correctly rounded).
func Fmt2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }

// Fmt0 formats like Python's "%.0f" (ties to even on the exact value).
func Fmt0(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }

// Fmt1 formats like Python's "%.1f".
func Fmt1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }

// Micros converts dollars to integer micros like the seller's
// round(dollars * 1_000_000) (Python round to an int is ties-to-even).
func Micros(dollars float64) int64 {
	return int64(math.RoundToEven(float64(dollars * 1_000_000)))
}

// Dollars converts micros to float dollars like the seller's micros / 1e6.
func Dollars(micros int64) float64 { return float64(micros) / 1_000_000 }
