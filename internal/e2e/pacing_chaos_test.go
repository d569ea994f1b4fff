package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/demo"
	"github.com/dealflow/dealflow/internal/loopport"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/internal/sandbox"
	"github.com/dealflow/dealflow/pkg/events"
	"github.com/dealflow/dealflow/services/booker"
	"github.com/dealflow/dealflow/services/pacer"
	"github.com/dealflow/dealflow/services/reallocator"
)

// TestPacingChaos follows a campaign's flight with the pacer and the
// broker each SIGKILLed while the lines deliver: the broker is a process
// of the real binary (embedded NATS on a file store) restarted on the same
// port and store, the pacer a process killed and replaced. A snapshot is
// (line, seq); from the event stream and the lines' records at the end:
//   - every line reached its final snapshot (the schedule resumed after
//     each kill: snapshots were read after the broker came back);
//   - each line's snapshots are seq 0..n-1, each stored once (one message
//     per id, one id per seq), n the count its record kept: none lost,
//     none doubled;
//   - the under-delivering line was still caught;
//   - the reallocator (in the pacer's process, killed with it) proposed a
//     reallocation for it and the booker applied it: each revision
//     proposed and ended once, each line change applied once (one
//     LineChanged per change_id), and the campaign's committed spend never
//     above its budget, in any LineChanged nor in the ledger at the end.
func TestPacingChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and SIGKILLs the pacer and the broker: skipped under -short")
	}
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	const day = 600 * time.Millisecond

	m, err := sandbox.Start(context.Background(), sandbox.DefaultMarket(), sandbox.WithTimeScale(day))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	credFile := filepath.Join(tmp, "credentials.json")
	if err := os.WriteFile(credFile, m.CredentialsFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := loopport.Free()
	if err != nil {
		t.Fatal(err)
	}
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(port)
	storeDir := filepath.Join(tmp, "broker")

	common := []string{
		"DEALFLOW_REGISTRY_URL=" + m.RegistryURL,
		"DEALFLOW_CREDENTIALS=" + credFile,
		"DEALFLOW_ALLOW_PRIVATE=true",
		"DEALFLOW_SHOPPING_WINDOW=60s",
		"DEALFLOW_METRICS_ADDR=127.0.0.1:0",
		"DEALFLOW_LOG_JSON=true",
		"DEALFLOW_TIME_SCALE=" + day.String(),
		"DEALFLOW_PACING_EVERY=6h",
		// A reading held by a killed pacer is taken up by another after
		// AckWait, the seller timeout plus 5s.
		"DEALFLOW_SELLER_TIMEOUT=1s",
	}
	var mu sync.Mutex
	var procs []*proc
	start := func(name string, args ...string) *proc {
		t.Helper()
		p := startProc(t, tmp, name, bin, append([]string{"run"}, args...), common)
		mu.Lock()
		procs = append(procs, p)
		mu.Unlock()
		return p
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		stopProcs(t, procs, 30)
	})
	kill := func(p *proc) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	broker := func(n int) *proc {
		p := start(fmt.Sprintf("broker-%d", n), "--stages=", "--nats-port", strconv.Itoa(port), "--data-dir", storeDir)
		p.waitLog(t, "embedded NATS listening")
		return p
	}
	stage := func(name, stages string) *proc {
		p := start(name, "--stages", stages, "--nats", natsURL)
		p.waitLog(t, "stage running")
		return p
	}
	b := broker(1)
	nc, err := nats.Connect(natsURL, bus.ConnectOptions("test", natstest.Logger())...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	tb, err := bus.New(nc, bus.Config{}, natstest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	stage("shopping", "discoverer,kitfetcher,negotiator,booker")
	pacer1 := stage("pacer-1", "pacer,reallocator")

	req := demo.SampleCampaign("pacing-chaos", "adaptive")
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "test", req.CampaignID, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	snapshots := func() uint64 {
		return countSubject(t, tb, events.KindDeliveryReported.SubjectFor(req.CampaignID))
	}
	// The pacer dies while the lines deliver, likely in the middle of a
	// reading (Metro Mobile answers slowly once delivering); another takes
	// over.
	checkfor.Until(t, 2*time.Minute, "lines delivering", func() bool { return snapshots() >= 1 })
	if err := m.Seller("Metro Mobile").SetFaults(sandbox.Faults{Latency: 120 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	checkfor.Until(t, time.Minute, "lines delivering", func() bool { return snapshots() >= 6 })
	kill(pacer1)
	killedPacer := snapshots()
	pacer2 := stage("pacer-2", "pacer,reallocator")
	// Then the broker dies, and comes back on the same store.
	checkfor.Until(t, time.Minute, "delivery read by the new pacer", func() bool { return snapshots() >= killedPacer+6 })
	kill(b)
	broker(2)
	restarted := time.Now()

	lines, err := bus.OpenStore[pacer.Line](context.Background(), tb, bus.BucketPacing)
	if err != nil {
		t.Fatal(err)
	}
	var followed map[string]pacer.Line
	checkfor.Check(t, 3*time.Minute, 250*time.Millisecond, func() error {
		all, err := lines.Values(context.Background(), req.CampaignID+".*")
		if err != nil || len(all) < 3 {
			return fmt.Errorf("%d lines followed (%v)", len(all), err)
		}
		for k, l := range all {
			if !l.Done {
				return fmt.Errorf("line %s of %s at seq %d, not done", k, l.Deal.SellerURL, l.NextSeq)
			}
		}
		followed = all
		return nil
	})

	checkReallocations(t, tb, req.CampaignID, req.Brief.BudgetMicros)

	type stored struct {
		seq   int
		final bool
		read  time.Time
	}
	byLine := map[string][]stored{}
	ids := map[string]int{}
	var under bool
	for _, ev := range storedEvents(t, tb, events.KindDeliveryReported.SubjectFor(req.CampaignID)) {
		p, err := events.PayloadOf[events.DeliveryReported](ev, events.KindDeliveryReported)
		if err != nil {
			t.Fatal(err)
		}
		ids[ev.ID()]++
		if ev.ID() != pacer.SnapshotID(p.CampaignID, p.LineKey, p.Seq) {
			t.Errorf("snapshot %s/%d stored under id %s", p.LineKey, p.Seq, ev.ID())
		}
		byLine[p.LineKey] = append(byLine[p.LineKey], stored{p.Seq, p.Final, p.ReadAt})
		under = under || p.Status == events.PacingUnder
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("snapshot %s stored %d times", id, n)
		}
	}
	afterRestart := 0
	for _, l := range followed {
		ss := byLine[l.Deal.LineKey]
		sort.Slice(ss, func(i, j int) bool { return ss[i].seq < ss[j].seq })
		if len(ss) != l.NextSeq {
			t.Errorf("line %s: %d snapshots stored, its record counted %d", l.Deal.LineKey, len(ss), l.NextSeq)
		}
		for i, s := range ss {
			if s.seq != i {
				t.Errorf("line %s: snapshot %d of %d has seq %d (lost or doubled)", l.Deal.LineKey, i, len(ss), s.seq)
				break
			}
			if s.final != (i == len(ss)-1) {
				t.Errorf("line %s: snapshot %d final=%v (of %d)", l.Deal.LineKey, s.seq, s.final, len(ss))
			}
			if s.read.After(restarted) {
				afterRestart++
			}
		}
	}
	if !under {
		t.Error("the under-delivering line was not caught")
	}
	// Readings redelivered to the new pacer: those the killed one held.
	redelivered := map[string]bool{}
	for _, line := range strings.Split(pacer2.logText(), "\n") {
		var l struct {
			EventType string `json:"event_type"`
			EventID   string `json:"event_id"`
			Delivered int    `json:"num_delivered"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.EventType == events.KindDeliveryDue.Type && l.Delivered > 1 {
			redelivered[l.EventID] = true
		}
	}
	t.Logf("%d lines, %d snapshots (%d read after the broker restarted); pacer killed after %d; readings taken up again after a kill: %d",
		len(followed), len(ids), afterRestart, killedPacer, len(redelivered))
	if afterRestart == 0 {
		t.Fatal("no snapshot was read after the broker restarted: the flight ended before the kills, nothing was tested")
	}
}

// checkReallocations waits until the campaign's reallocations ended, then
// checks that one was made and applied at the sellers, each revision
// proposed and ended once, each change applied once, and the committed
// spend never above the budget.
func checkReallocations(t *testing.T, tb *bus.Bus, campaignID string, budget events.Micros) {
	t.Helper()
	recs, err := reallocator.OpenRecords(context.Background(), tb)
	if err != nil {
		t.Fatal(err)
	}
	checkfor.Check(t, 2*time.Minute, 250*time.Millisecond, func() error {
		r, _, err := recs.Get(context.Background(), campaignID)
		switch {
		case err != nil:
			return err
		case len(r.Revisions) == 0:
			return fmt.Errorf("no reallocation proposed")
		case r.Pending() != nil:
			return fmt.Errorf("reallocation %d is %s", r.Pending().Revision, r.Pending().Status)
		}
		return nil
	})
	count := func(k events.Kind, key func(events.Event) string) map[string]int {
		n := map[string]int{}
		for _, ev := range storedEvents(t, tb, k.SubjectFor(campaignID)) {
			n[key(ev)]++
		}
		return n
	}
	revision := func(k events.Kind) func(events.Event) string {
		return func(ev events.Event) string {
			p, _, err := events.Payload(ev)
			if err != nil {
				t.Fatal(err)
			}
			switch v := p.(type) {
			case *events.ReallocationProposed:
				return strconv.Itoa(v.Revision)
			case *events.ReallocationApplied:
				return strconv.Itoa(v.Revision)
			case *events.ReallocationFailed:
				return strconv.Itoa(v.Revision)
			}
			t.Fatalf("%s: %T", k.Name, p)
			return ""
		}
	}
	proposed := count(events.KindReallocationProposed, revision(events.KindReallocationProposed))
	ended := count(events.KindReallocationApplied, revision(events.KindReallocationApplied))
	for rev, n := range count(events.KindReallocationFailed, revision(events.KindReallocationFailed)) {
		ended[rev] += n
	}
	for rev, n := range proposed {
		if n != 1 || ended[rev] != 1 {
			t.Errorf("reallocation %s: proposed %d times, ended %d times", rev, n, ended[rev])
		}
	}
	var byRealloc int
	changes := map[string]int{}
	for _, ev := range storedEvents(t, tb, events.KindLineChanged.SubjectFor(campaignID)) {
		c, err := events.PayloadOf[events.LineChanged](ev, events.KindLineChanged)
		if err != nil {
			t.Fatal(err)
		}
		changes[c.ChangeID]++
		if c.RequestedBy == events.RequestedByReallocation {
			byRealloc++
		}
		if c.CommittedMicros > budget {
			t.Errorf("change %s took the committed spend to %s, above the %s budget", c.ChangeID, c.CommittedMicros, budget)
		}
	}
	for id, n := range changes {
		if n != 1 {
			t.Errorf("change %s applied %d times", id, n)
		}
	}
	if byRealloc == 0 {
		t.Errorf("no line changed by a reallocation (%d proposed)", len(proposed))
	}
	ledger, err := bus.OpenStore[booker.Ledger](context.Background(), tb, bus.BucketLedger)
	if err != nil {
		t.Fatal(err)
	}
	led, ok, err := ledger.Get(context.Background(), campaignID)
	if err != nil || !ok {
		t.Fatalf("ledger: %v %v", ok, err)
	}
	if led.Committed() > budget {
		t.Errorf("ledger committed %s, above the %s budget", led.Committed(), budget)
	}
	t.Logf("%d reallocations, %d line changes by them; ledger committed %s of %s", len(proposed), byRealloc, led.Committed(), budget)
}
