// Package layout holds the tests that keep the module's import rules:
// no stage package (services/*) talks to NATS itself (internal/bus does),
// the public contract pkg/events imports no other package of the module but
// its vocabulary (pkg/market, a standard-library-only leaf), and the seller
// client does not depend on the contract.
package layout

import (
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/dealflow/dealflow"

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found: %v", err)
	}
	return dir
}

// imports lists the non-test imports of the package in dir and of every
// package below it.
func imports(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != dir && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if _, ok := err.(*build.NoGoError); ok {
			return nil
		}
		if err != nil {
			return err
		}
		out[path] = p.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no Go packages under %s", dir)
	}
	return out
}

// natsDebt lists the stage packages that still use JetStream KV types
// directly. They are to move behind internal/bus's typed KV stores; the list
// may only shrink, and an entry that no longer applies fails the test.
var natsDebt = map[string]bool{}

func TestStagesDoNotImportNATS(t *testing.T) {
	t.Parallel()
	r := root(t)
	seen := map[string]bool{}
	for dir, imps := range imports(t, filepath.Join(r, "services")) {
		rel, err := filepath.Rel(r, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range imps {
			if strings.HasPrefix(imp, "github.com/nats-io/") || strings.HasPrefix(imp, "github.com/cloudevents/sdk-go/protocol/nats") {
				key := filepath.ToSlash(rel) + " " + imp
				if natsDebt[key] {
					seen[key] = true
					continue
				}
				t.Errorf("%s imports %s: stages reach NATS only through internal/bus", rel, imp)
			}
		}
	}
	for key := range natsDebt {
		if !seen[key] {
			t.Errorf("natsDebt entry %q no longer applies: delete it", key)
		}
	}
}

func TestEventsImportsNothingOfTheModule(t *testing.T) {
	t.Parallel()
	for dir, imps := range imports(t, filepath.Join(root(t), "pkg", "events")) {
		for _, imp := range imps {
			if imp != module+"/pkg/market" && (imp == module || strings.HasPrefix(imp, module+"/")) {
				t.Errorf("%s imports %s: the public contract depends on no other package of the module than its vocabulary, pkg/market", dir, imp)
			}
		}
	}
}

// TestMarketImportsOnlyTheStandardLibrary: the vocabulary is a leaf that
// the contract and the seller client share.
func TestMarketImportsOnlyTheStandardLibrary(t *testing.T) {
	t.Parallel()
	for dir, imps := range imports(t, filepath.Join(root(t), "pkg", "market")) {
		for _, imp := range imps {
			if strings.Contains(strings.Split(imp, "/")[0], ".") {
				t.Errorf("%s imports %s: pkg/market depends on the standard library only", dir, imp)
			}
		}
	}
}

// TestSellerClientLeavesTheEventRuntimeOut: a program that only calls
// sellers (the seller client and the tier decisions of pkg/identity) does
// not link the contract's CloudEvents SDK or its JSON Schema validator.
func TestSellerClientLeavesTheEventRuntimeOut(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-deps", "./pkg/sellerclient", "./pkg/identity")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "cloudevents") || strings.Contains(d, "jsonschema") || d == module+"/pkg/events" {
			t.Errorf("pkg/sellerclient or pkg/identity depends on %s", d)
		}
	}
}

// TestCampaignRecordHasOneOwner: only internal/campaign opens the campaign
// buckets (internal/bus defines and provisions them), so every write of a
// campaign record goes through the state machine's transitions.
func TestCampaignRecordHasOneOwner(t *testing.T) {
	t.Parallel()
	r := root(t)
	allowed := map[string]bool{filepath.Join(r, "internal", "campaign"): true, filepath.Join(r, "internal", "bus"): true}
	var offenders []string
	err := filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if allowed[path] || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, name := range []string{"BucketCampaigns", "BucketCampaignQuotes"} {
			if strings.Contains(string(b), name) && !strings.HasSuffix(path, "layout_test.go") {
				rel, _ := filepath.Rel(r, path)
				offenders = append(offenders, rel+" uses "+name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(offenders) > 0 {
		t.Fatalf("the campaign buckets are internal/campaign's alone:\n%s", strings.Join(offenders, "\n"))
	}
}

// TestDealSeatRecordHasOneOwner: only services/activator opens the buyer
// seat bucket (internal/bus defines and provisions it): the bookings API
// and the stage write a deal's seat status only through its transitions.
func TestDealSeatRecordHasOneOwner(t *testing.T) {
	t.Parallel()
	r := root(t)
	allowed := map[string]bool{filepath.Join(r, "services", "activator"): true, filepath.Join(r, "internal", "bus"): true}
	var offenders []string
	err := filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if allowed[path] || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "layout_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "BucketDealSeats") || strings.Contains(string(b), "dealflow_deal_seats") {
			rel, _ := filepath.Rel(r, path)
			offenders = append(offenders, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(offenders) > 0 {
		t.Fatalf("the buyer seat bucket is services/activator's alone:\n%s", strings.Join(offenders, "\n"))
	}
}

// TestReallocationRecordHasOneOwner: only services/reallocator opens the
// reallocation bucket (internal/bus defines and provisions it); the
// bookings API reads it through reallocator.Records and decides nothing
// in it: an approval or rejection is an event the reallocator acts on.
func TestReallocationRecordHasOneOwner(t *testing.T) {
	t.Parallel()
	r := root(t)
	allowed := map[string]bool{filepath.Join(r, "services", "reallocator"): true, filepath.Join(r, "internal", "bus"): true}
	var offenders []string
	err := filepath.WalkDir(r, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if allowed[path] || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "layout_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "BucketReallocations") || strings.Contains(string(b), "dealflow_reallocations") {
			rel, _ := filepath.Rel(r, path)
			offenders = append(offenders, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(offenders) > 0 {
		t.Fatalf("the reallocation bucket is services/reallocator's alone:\n%s", strings.Join(offenders, "\n"))
	}
}

// TestEventsImportsNoNATS: the public contract describes the events and their
// wire form without a NATS client; only its examples connect to a server.
func TestEventsImportsNoNATS(t *testing.T) {
	t.Parallel()
	for dir, imps := range imports(t, filepath.Join(root(t), "pkg", "events")) {
		for _, imp := range imps {
			if strings.HasPrefix(imp, "github.com/nats-io/") {
				t.Errorf("%s imports %s: the public contract does not talk to NATS", dir, imp)
			}
		}
	}
}
