package sandbox

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dealflow/dealflow/internal/sandbox/engine"
)

// pyFloat marshals like Python's json float repr (10.0, 0.030000000000000027,
// 1e-05) so a float field never turns into an integer on the wire.
type pyFloat float64

// MarshalJSON implements json.Marshaler.
func (f pyFloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return []byte("null"), nil
	}
	abs := math.Abs(x)
	switch {
	case abs != 0 && (abs < 1e-4 || abs >= 1e16):
		return []byte(strconv.FormatFloat(x, 'e', -1, 64)), nil
	case x == math.Trunc(x):
		return []byte(strconv.FormatFloat(x, 'f', -1, 64) + ".0"), nil
	default:
		return []byte(strconv.FormatFloat(x, 'f', -1, 64)), nil
	}
}

// money is the v1 Money object (integer micros).
type money struct {
	AmountMicros int64  `json:"amount_micros"`
	Currency     string `json:"currency"`
}

func usd(dollars float64) *money {
	return &money{AmountMicros: engine.Micros(dollars), Currency: "USD"}
}

// writeJSON writes v as JSON like FastAPI's JSONResponse (UTF-8, no HTML escaping).
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := encodeJSON(v)
	writeBody(w, status, b)
}

// encodeJSON renders v as the seller does (no HTML escaping, no trailing
// newline).
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// writeBody writes an encoded JSON body; nil (an encoding failure) is a 500.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	if b == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("Internal Server Error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeDetail writes the {"detail": d} error body.
func writeDetail(w http.ResponseWriter, status int, d any) {
	writeJSON(w, status, map[string]any{"detail": d})
}

// errorObj is the seller's ad-hoc {"error","message",...} detail.
func errorObj(code, msg string) map[string]any {
	return map[string]any{"error": code, "message": msg}
}

// envelopeErr is the shared ErrorEnvelope detail (with unsupported list).
func envelopeErr(code, msg string, unsupported []map[string]any) map[string]any {
	if unsupported == nil {
		unsupported = []map[string]any{}
	}
	return map[string]any{"error": code, "message": msg, "unsupported": unsupported}
}

// isoZ formats like the v1 surfaces: RFC 3339 UTC, microseconds, "Z"
// (pydantic omits the fraction when it is zero).
func isoZ(t time.Time) string { return isoNaive(t) + "Z" }

// isoNaive formats like Python's naive datetime.isoformat() (legacy surfaces).
func isoNaive(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s
}

// randHex returns n random lowercase hex characters (uuid4-like ids).
func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms; fall back to time.
		return shortHash(time.Now().String(), n)
	}
	return hex.EncodeToString(b)[:n]
}

// shortHash is the first n hex chars of sha256(s): deterministic ids.
func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// nonNil makes nil slices encode as [] like pydantic's list defaults.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// strPtrOrNil is nil for "" (pydantic Optional[str] = None).
func strPtrOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lowerAll lowercases each element.
func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}
