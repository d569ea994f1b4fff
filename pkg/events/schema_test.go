package events

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the committed schemas from the Go types")

// TestSchemasMatchTypes keeps the published schemas and the Go payload types
// from drifting apart. Run with -update after changing a payload.
func TestSchemasMatchTypes(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds {
		got, err := GenerateSchema(k)
		if err != nil {
			t.Fatalf("%s: %v", k.Name, err)
		}
		path := filepath.Join("schemas", k.SchemaFile())
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run go test ./pkg/events -run TestSchemasMatchTypes -update)", k.Name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: committed schema %s is stale; run go test ./pkg/events -run TestSchemasMatchTypes -update", k.Name, path)
		}
	}
}

func TestValidateData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		kind    Kind
		data    string
		wantErr string
	}{
		{"valid", KindSellerSkipped, `{"campaign_id":"c-1","seller_url":"http://s","stage":"discoverer","code":"blocked","reason":"blocked by registry"}`, ""},
		{"missing required", KindSellerSkipped, `{"campaign_id":"c-1","stage":"discoverer","code":"x","reason":"y"}`, "seller_url"},
		{"wrong type", KindSellerSkipped, `{"campaign_id":"c-1","seller_url":5,"stage":"d","code":"x","reason":"y"}`, "/seller_url"},
		{"bad campaign id", KindSellerSkipped, `{"campaign_id":"a b","seller_url":"u","stage":"d","code":"x","reason":"y"}`, "/campaign_id"},
		{"bad tier", KindSellerFound, `{"campaign_id":"c","seller":{"url":"u","trust":"verified","source":"registry"},"disclosure":{"tier":"god","recommended":"seat","cap":"seat","reason":""}}`, "/disclosure/tier"},
		{"not json", KindSellerSkipped, `{`, "not JSON"},
		{"empty", KindSellerSkipped, ``, "no data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateData(c.kind, []byte(c.data))
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !bytes.Contains([]byte(err.Error()), []byte(c.wantErr)) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, c.wantErr)
			}
		})
	}
}
