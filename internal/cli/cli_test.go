package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/app"
	"github.com/dealflow/dealflow/internal/config"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/pkg/sellerclient/adcp"
)

func TestDemoJSONCompletes(t *testing.T) {
	var out bytes.Buffer
	var errb natstest.LogBuffer // the logger and the progress lines share stderr
	code := Main(context.Background(), []string{"demo", "--json", "--strategy", "competitive", "--data-dir", t.TempDir()}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		CampaignID       string        `json:"campaign_id"`
		Status           string        `json:"status"`
		Budget           float64       `json:"budget"`
		BudgetMicros     events.Micros `json:"budget_micros"`
		TotalSpend       float64       `json:"total_spend"`
		TotalSpendMicros events.Micros `json:"total_spend_micros"`
		Deals            []struct {
			SellerURL   string        `json:"seller_url"`
			PackageID   string        `json:"package_id"`
			DealID      string        `json:"deal_id"`
			CPM         float64       `json:"cpm"`
			CPMMicros   events.Micros `json:"cpm_micros"`
			Spend       float64       `json:"spend"`
			SpendMicros events.Micros `json:"spend_micros"`
			Impressions int64         `json:"impressions"`
			Protocol    string        `json:"protocol"`
		} `json:"deals"`
		SkippedSellers []struct{ SellerURL, Reason string } `json:"skipped_sellers"`
		Negotiations   []struct {
			Strategy, Outcome string
			Rounds            int
		} `json:"negotiations"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if res.Status != "completed" || len(res.Deals) == 0 || res.TotalSpend > res.Budget || res.TotalSpend <= 0 ||
		res.BudgetMicros != 50_000_000_000 || res.Budget != res.BudgetMicros.Dollars() || res.TotalSpend != res.TotalSpendMicros.Dollars() {
		t.Fatalf("result %+v", res)
	}
	// The dollar fields are derived from the micros, and the total is the
	// exact sum of the deals' booked amounts.
	var sum events.Micros
	for _, d := range res.Deals {
		cost := events.CostMicros(d.Impressions, d.CPMMicros)
		if d.Protocol == "adcp" {
			cost = adcp.MinorUnitFloor(cost, "USD") // an AdCP budget is whole cents, never above the cost
		}
		if d.CPM != d.CPMMicros.Dollars() || d.Spend != d.SpendMicros.Dollars() || d.SpendMicros != cost {
			t.Fatalf("deal %+v: dollars not derived from micros or spend not the booked amount", d)
		}
		sum += d.SpendMicros
	}
	if sum != res.TotalSpendMicros {
		t.Fatalf("total_spend_micros %d != sum of deals %d", res.TotalSpendMicros, sum)
	}
	if len(res.SkippedSellers) < 3 {
		t.Fatalf("skipped %+v: the default market has a blocked, an unknown and a down seller", res.SkippedSellers)
	}
	competitive := 0
	for _, n := range res.Negotiations {
		if n.Strategy == "competitive" {
			competitive++
		}
	}
	if competitive == 0 {
		t.Fatalf("--strategy competitive not used: %+v", res.Negotiations)
	}
	if !strings.Contains(errb.String(), "[negotiator]") {
		t.Fatalf("progress did not go to stderr in --json mode:\n%s", errb.String())
	}
}

func TestBrowseCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"sellers", "--sandbox", "--caps", "ctv,video", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("sellers exit %d: %s", code, errb.String())
	}
	var sellers struct {
		Sellers []SellerRow `json:"sellers"`
	}
	if err := json.Unmarshal(out.Bytes(), &sellers); err != nil {
		t.Fatal(err)
	}
	byName := map[string]SellerRow{}
	for _, s := range sellers.Sellers {
		byName[s.Name] = s
	}
	if s := byName["StreamMax CTV"]; s.Reveal != "advertiser" || !s.Contact {
		t.Fatalf("StreamMax: %+v", s)
	}
	if s := byName["Shady Reseller"]; s.Contact || s.SkipCode != "blocked" || s.Reveal != "nothing" {
		t.Fatalf("Shady Reseller: %+v", s)
	}
	out.Reset()
	if code := Main(context.Background(), []string{"packages", "--sandbox", "--caps", "ctv,video", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("packages exit %d: %s", code, errb.String())
	}
	var pk struct {
		Packages []PackageRow `json:"packages"`
		Skipped  []SkippedRow `json:"skipped"`
	}
	if err := json.Unmarshal(out.Bytes(), &pk); err != nil {
		t.Fatal(err)
	}
	if len(pk.Packages) < 3 {
		t.Fatalf("packages %+v", pk.Packages)
	}
	// The sandbox market's seller that is down, and the blocked one, are
	// listed with their reasons, not dropped.
	codes := map[string]string{}
	unreachable := 0
	for _, s := range pk.Skipped {
		codes[s.SellerName] = s.Code
		if s.Code == "unreachable" {
			unreachable++
		}
		if s.Reason == "" {
			t.Fatalf("skipped seller without a reason: %+v", s)
		}
	}
	if codes["Shady Reseller"] != "blocked" || unreachable == 0 {
		t.Fatalf("skipped sellers %+v", pk.Skipped)
	}
	for i := 1; i < len(pk.Packages); i++ {
		if pk.Packages[i].Price < pk.Packages[i-1].Price {
			t.Fatalf("not sorted by price at %d", i)
		}
	}
	for _, p := range pk.Packages {
		// An AdCP fixed price has no floor: the price is the price.
		if p.Tier != "public" && (p.Price <= 0 || (p.Floor <= 0 && p.PricingModel != "fixed")) {
			t.Fatalf("authenticated package without exact price or floor: %+v", p)
		}
	}
}

func TestSandboxJSONLine(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan int)
	go func() { done <- Main(ctx, []string{"sandbox", "--json"}, w, io.Discard); w.Close() }()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		RegistryURL string `json:"registry_url"`
		Sellers     []struct {
			Name, URL string
			Keys      map[string]string
		} `json:"sellers"`
	}
	if err := json.Unmarshal([]byte(line), &sum); err != nil || !strings.HasPrefix(sum.RegistryURL, "http://127.0.0.1:") || len(sum.Sellers) < 5 || sum.Sellers[0].Keys["agency"] == "" {
		t.Fatalf("line %q: %v", line, err)
	}
	cancel()
	go io.Copy(io.Discard, r)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox did not stop on interrupt")
	}
}

func TestParseBriefConvertsDollarsOnce(t *testing.T) {
	req, err := ParseBrief([]byte(`{"brief":{"name":"x","budget":16666.665,"start_date":"2028-06-01","end_date":"2028-06-02",
		"kpis":{"target_cpm":18.5,"max_cpm":92.39999999999999},"per_seller_cap":0.0000015,"weights":{"price":1,"price_ceiling":50}},
		"negotiation":{"step":0.25}}`))
	if err != nil {
		t.Fatal(err)
	}
	b := req.Brief
	if b.BudgetMicros != 16_666_665_000 || b.KPIs.TargetCPMMicros != 18_500_000 || b.KPIs.MaxCPMMicros != 92_400_000 ||
		b.PerSellerCapMicros != 2 || b.Weights.PriceCeilingMicros != 50_000_000 || req.Negotiation.StepMicros != 250_000 {
		t.Fatalf("converted %+v %+v", b, req.Negotiation)
	}
}

func TestParseBrief(t *testing.T) {
	cases := []struct {
		name, body, wantErr string
	}{
		{"example", mustRead(t, filepath.Join("..", "..", "examples", "campaign.json")), ""},
		{"unknown field", `{"brief":{"name":"x","budget":1,"start_date":"2028-06-01","end_date":"2028-06-02"},"budgett":5}`, "unknown field"},
		{"bad dates", `{"brief":{"name":"x","budget":1,"start_date":"2028-07-01","end_date":"2028-06-02"}}`, "brief.end_date"},
		{"zero budget names the dollar field", `{"brief":{"name":"x","budget":0.0000004,"start_date":"2028-06-01","end_date":"2028-06-02"}}`, "brief.budget:"},
		{"event payload in micros", `{"campaign_id":"c-1","brief":{"name":"x","budget_micros":1000000,"start_date":"2028-06-01","end_date":"2028-06-02"},"buyer":{},"auto_approve":true,"requested_at":"2028-06-01T00:00:00Z"}`, ""},
		{"float micros refused", `{"campaign_id":"c-1","brief":{"name":"x","budget_micros":1000000.5,"start_date":"2028-06-01","end_date":"2028-06-02"},"buyer":{},"auto_approve":true}`, "campaign file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := ParseBrief([]byte(c.body))
			if c.wantErr == "" {
				if err != nil || req.CampaignID == "" || req.Brief.BudgetMicros <= 0 {
					t.Fatalf("%+v %v", req, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
		})
	}
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// TestStrayArgumentsRefused: flag parsing stops at the first argument, so a
// boolean flag given a separate value ("--allow-private true") used to drop
// every flag after it silently (the bench's negotiator children then never
// logged in JSON and the bench waited for ever). Now it is an error naming
// the argument and the flags that were not read.
func TestStrayArgumentsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--stages", "negotiator", "--allow-private", "true", "--log-json"}, []string{`unexpected argument "true"`, "--flag=true", "not read: --log-json"}},
		{[]string{"run", "--log-json", "false"}, []string{`unexpected argument "false"`, "--flag=false"}},
		{[]string{"demo", "extra"}, []string{`unexpected argument "extra"`}},
		{[]string{"sandbox", "--json", "true"}, []string{`unexpected argument "true"`}},
		{[]string{"bench", "--json", "true"}, []string{`unexpected argument "true"`}},
		{[]string{"sellers", "--sandbox", "x"}, []string{`unexpected argument "x"`}},
		{[]string{"campaign", "submit", "brief.json", "--wait", "true", "--nats", "nats://127.0.0.1:1"}, []string{`unexpected argument "true"`, "not read: --nats nats://127.0.0.1:1"}},
		{[]string{"campaign", "submit", "--wait", "brief.json", "extra"}, []string{`unexpected argument "extra"`}},
		{[]string{"campaign", "watch", "cmp-1", "x"}, []string{`unexpected argument "x"`}},
		{[]string{"config", "x"}, []string{`unexpected argument "x"`}},
		{[]string{"version", "x"}, []string{`unexpected argument "x"`}},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), c.args, &out, &errb)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1 (%s)", c.args, code, errb.String())
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: %q does not say %q", c.args, errb.String(), w)
			}
		}
	}
}

// TestFlightFlagsValidated: a flight clock or reading interval that cannot
// work is refused before anything starts.
func TestFlightFlagsValidated(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"demo", "--flight", "--time-scale", "0"},
		{"demo", "--flight", "--pacing-every", "10s"},
		{"sandbox", "--time-scale", "fast"},
		{"run", "--sandbox", "--time-scale", "-2"},
	} {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), args, &out, &errb); code != 1 || !strings.Contains(errb.String(), "time-scale") && !strings.Contains(errb.String(), "pacing-every") {
			t.Errorf("%v: exit %d: %s", args, code, errb.String())
		}
	}
}

// TestSubmitAndWatch publishes a campaign file to a running pipeline over
// NATS, then watches it from another "terminal".
func TestSubmitAndWatch(t *testing.T) {
	m, err := sandbox.Start(context.Background(), sandbox.DefaultMarket())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := config.Defaults()
	cfg.DataDir, cfg.NATSPort, cfg.RegistryURL, cfg.AllowPrivate = t.TempDir(), 0, m.RegistryURL, true
	a, err := app.Start(context.Background(), cfg, zerolog.Nop(), app.Options{Credentials: m.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	url := a.Server.ClientURL()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"campaign", "submit", filepath.Join("..", "..", "examples", "campaign.json"), "--nats", url, "--wait"}, &out, &errb); code != 0 {
		t.Fatalf("submit exit %d: %s %s", code, errb.String(), out.String())
	}
	var id string
	if _, err := fmt.Sscanf(out.String(), "submitted campaign %s", &id); err != nil || id == "" {
		t.Fatalf("no campaign id in %q", out.String())
	}
	if !strings.Contains(out.String(), "Budget: $40,000.00") || !strings.Contains(out.String(), "DEMO-") {
		t.Fatalf("--wait report:\n%s", out.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"campaign", "watch", id, "--nats", url}, &out, &errb); code != 0 {
		t.Fatalf("watch exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Campaign "+id+": completed") || !strings.Contains(out.String(), "Budget: $40,000.00") {
		t.Fatalf("watch report:\n%s", out.String())
	}

	// An id nobody submitted (the README's own example) fails fast,
	// naming it, instead of waiting silently for ever.
	out.Reset()
	errb.Reset()
	start := time.Now()
	code := Main(context.Background(), []string{"campaign", "watch", "cmp-001", "--nats", url}, &out, &errb)
	if took := time.Since(start); code == 0 || took > 5*time.Second || !strings.Contains(errb.String(), "campaign cmp-001 not found") {
		t.Fatalf("watch of an unknown id: exit %d after %v, stderr %q", code, took, errb.String())
	}
}

// TestBrowseValidatesInputFiles: the sellers command loads its files with
// the process's loaders, so a bad trust word stops it before any request.
func TestBrowseValidatesInputFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "known.json")
	if err := os.WriteFile(p, []byte(`[{"url":"http://seller.example","trust":"trusted?"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"sellers", "--known-sellers", p}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), p) || !strings.Contains(errb.String(), `entry 0 (url "http://seller.example"): field trust`) {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	p2 := filepath.Join(t.TempDir(), "known.json")
	if err := os.WriteFile(p2, []byte(`[{"url":"http://seller.example","trust":"Approved"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	// The seller is unreachable (no such host) but listed as verified: the
	// trust word of the sandbox and IAB registries is accepted.
	if code := Main(context.Background(), []string{"sellers", "--known-sellers", p2, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"trust":"verified"`) {
		t.Fatalf("out %s", out.String())
	}
}

// TestEveryCommandAnswersHelp: `dealflow COMMAND -h` prints the command's
// flags and exits 0, as the usage promises, and the flag help reads
// naturally: no quoted word of a flag's text is printed as its argument
// name (the flag package takes the first `quoted` word for one).
func TestEveryCommandAnswersHelp(t *testing.T) {
	argName := regexp.MustCompile(`(?m)^\s+-[a-z-]+ ([a-z]+)\b`)
	for _, cmd := range [][]string{{"demo"}, {"run"}, {"bench"}, {"campaign", "submit"}, {"campaign", "watch"}, {"sandbox"},
		{"sellers"}, {"packages"}, {"healthcheck"}, {"config"}} {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), append(cmd, "-h"), &out, &errb)
			help := out.String() + errb.String()
			if code != 0 || !strings.Contains(help, "-") {
				t.Fatalf("exit %d: %s", code, help)
			}
			for _, m := range argName.FindAllStringSubmatch(help, -1) {
				switch m[1] {
				case "value", "string", "int", "duration", "float", "uint":
				default:
					t.Errorf("flag help names its argument %q: %q", m[1], strings.TrimSpace(m[0]))
				}
			}
		})
	}
}

// TestConfigShowsEffectiveSettings: `dealflow config` shows what a run
// with the same flags and environment would use, and where each value
// comes from; secrets are masked; --reference is the README's table.
func TestConfigShowsEffectiveSettings(t *testing.T) {
	t.Setenv("DEALFLOW_NEGOTIATOR_WORKERS", "12")
	t.Setenv("DEALFLOW_KIT_WORKERS", "9")
	t.Setenv("DEALFLOW_API_KEY", "s3cret-key")
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"config", "--kit-workers", "7"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 {
			rows[f[0]] = f[1:]
		}
	}
	for flag, want := range map[string]string{"--negotiator-workers": "12 env DEALFLOW_NEGOTIATOR_WORKERS", "--kit-workers": "7 flag --kit-workers",
		"--shopping-window": "2m default", "--api-key": "(set) env DEALFLOW_API_KEY"} {
		if got := strings.Join(rows[flag], " "); got != want {
			t.Errorf("%s: %q, want %q", flag, got, want)
		}
	}
	if strings.Contains(out.String(), "s3cret-key") {
		t.Fatal("config printed a secret")
	}
	out.Reset()
	if code := Main(context.Background(), []string{"config", "--reference"}, &out, &errb); code != 0 || out.String() != config.Markdown() {
		t.Fatalf("--reference: exit %d", code)
	}
	out.Reset()
	if code := Main(context.Background(), []string{"config", "--booking-horizon", "0s"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "booking-horizon") {
		t.Fatalf("invalid settings: exit %d, %s", code, errb.String())
	}
}
