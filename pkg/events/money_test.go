package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// moneyWord matches property names that suggest an amount of money.
var moneyWord = regexp.MustCompile(`budget|spend|cpm|price|cost|floor|cap|step`)

// TestSchemasMoneyIsIntegerMicros walks every committed schema: a property
// whose name suggests money must be an integer named *_micros.
func TestSchemasMoneyIsIntegerMicros(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("schemas", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas: %v", err)
	}
	// Names that match the pattern but are not amounts: a boolean alarm, the
	// seller's capabilities, the disclosure's tier cap, the seller's display
	// string ("$28-$42 CPM") and the unitless score weight on price.
	notMoney := map[string]bool{"cpm_mismatch": true, "capabilities": true, "cap": true, "price_range": true, "price": true}
	var checked []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func(path string, node any)
		walk = func(path string, node any) {
			switch n := node.(type) {
			case map[string]any:
				if props, ok := n["properties"].(map[string]any); ok {
					for name, p := range props {
						if moneyWord.MatchString(name) && !notMoney[name] {
							checked = append(checked, name)
							typ, _ := p.(map[string]any)["type"].(string)
							if !strings.HasSuffix(name, "_micros") || typ != "integer" {
								t.Errorf("%s: %s/%s looks like money but is %v, not an integer *_micros", f, path, name, p.(map[string]any)["type"])
							}
						}
					}
				}
				keys := make([]string, 0, len(n))
				for k := range n {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					walk(path+"/"+k, n[k])
				}
			case []any:
				for _, x := range n {
					walk(path, x)
				}
			}
		}
		walk("", s)
	}
	if len(checked) < 20 {
		t.Fatalf("only %d money properties found: %v", len(checked), checked)
	}
}
