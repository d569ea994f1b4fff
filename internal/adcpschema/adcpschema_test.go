package adcpschema

import (
	"strings"
	"testing"
)

func TestValidator(t *testing.T) {
	v, err := LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	good := `{"buying_mode":"brief","brief":"CTV in the US","filters":{"channels":["ctv"],"start_date":"2026-01-01"}}`
	if err := v.ValidateRequest("get_products", []byte(good)); err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
	if err := v.ValidateRequest("get_products", []byte(`{"brief":"x"}`)); err == nil {
		t.Fatal("request without buying_mode accepted")
	}
	if err := v.ValidateRequest("get_products", []byte(`{"buying_mode":"brief","filters":{"start_date":"soon"}}`)); err == nil {
		t.Fatal("bad date format accepted")
	}
	sub := map[string]any{"status": "submitted", "task_id": "t1", "message": "pending"}
	if err := v.ValidateResponse("create_media_buy", sub); err != nil {
		t.Fatalf("submitted rejected: %v", err)
	}
	bad := map[string]any{"status": "completed", "media_buy_id": "mb", "packages": []any{}}
	if err := v.ValidateResponse("create_media_buy", bad); err == nil || !strings.Contains(err.Error(), "create-media-buy-response") {
		t.Fatalf("incomplete success accepted or wrong error: %v", err)
	}
	if _, err := v.schema("../x.json"); err == nil {
		t.Fatal("path outside the folder compiled")
	}
}

func TestLookaheadRegexp(t *testing.T) {
	re, err := regexpEngine(`^P(?!$)(\d+Y)?(\d+M)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$`)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"P1D": true, "PT5M": true, "P": false, "1D": false, "P1X": false} {
		if re.MatchString(s) != want {
			t.Errorf("%q: want %v", s, want)
		}
	}
	if _, err := regexpEngine(`(?<=x)y`); err == nil {
		t.Error("lookbehind compiled")
	}
}
