package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/checkfor"
	"github.com/dealflow/dealflow/internal/natstest"
	"github.com/dealflow/dealflow/pkg/events"
)

var sampleBrief = events.Brief{Name: "n", BudgetMicros: 1_000_000, StartDate: "2028-06-01", EndDate: "2028-06-02"}

func sellerFound(campaign string) events.SellerFound {
	return events.SellerFound{CampaignID: campaign,
		Seller:     events.Seller{URL: "https://seller.example", Name: "Seller", Trust: events.TrustVerified, Source: "registry"},
		Disclosure: events.Disclosure{Tier: events.TierSeat, Recommended: events.TierSeat, Cap: events.TierAgency, Reason: "r"},
		Brief:      sampleBrief.ForShopping()}
}

func packageFound(campaign string) events.PackageFound {
	sf := sellerFound(campaign)
	return events.PackageFound{CampaignID: campaign, Seller: sf.Seller, Disclosure: sf.Disclosure,
		Package: events.Package{ID: "pkg-7", Name: "P7"}, PackageIndex: 0, PackagesTotal: 2, Brief: sampleBrief.ForShopping()}
}

// rawMsg is an event of kind k as a foreign or buggy producer could store
// it, bypassing events.New's and Publish's checks: binary-mode headers as
// a stage's (source /dealflow/test), data as the payload.
func rawMsg(k events.Kind, id, subject string, data []byte) *nats.Msg {
	return &nats.Msg{Subject: k.SubjectFor(subject), Data: data, Header: nats.Header{
		"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-source": {events.SourcePrefix + "test"}, "ce-type": {k.Type},
		"ce-subject": {subject}, "ce-datacontenttype": {"application/json"}, nats.MsgIdHdr: {id}}}
}

// publishRaw stores data, encoded as JSON, as an event of kind k (rawMsg).
func publishRaw(t *testing.T, b *bus.Bus, k events.Kind, id, subject string, data any) events.Event {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	m := rawMsg(k, id, subject, raw)
	if _, err := b.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	e, err := events.Decode(events.Header(m.Header), m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func stageOn(name string, k events.Kind) bus.StageConfig {
	c := stage(name)
	c.Subjects = []string{k.Filter()}
	return c
}

// TestMismatchedCampaignDeadLetteredByEveryStage: an event whose payload
// campaign_id differs from its subject never reaches a handler of any stage;
// each stage dead-letters it with the same reason.
func TestMismatchedCampaignDeadLetteredByEveryStage(t *testing.T) {
	env := natstest.Start(t)
	var calls atomic.Int32
	h := func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		calls.Add(1)
		return nil, nil
	}
	run(t, env.Bus, stageOn("kitfetcher-like", events.KindSellerFound), h)
	run(t, env.Bus, stageOn("booker-like", events.KindSellerFound), h)
	publishRaw(t, env.Bus, events.KindSellerFound, "mismatch-1", "c-subject", sellerFound("c-other"))

	a := dlqMessages(t, env.Bus, "kitfetcher-like", 1)
	b := dlqMessages(t, env.Bus, "booker-like", 1)
	ra, rb := a[0].Header.Get(bus.HeaderDLQReason), b[0].Header.Get(bus.HeaderDLQReason)
	if ra != rb || !strings.Contains(ra, `payload campaign_id "c-other" differs from subject "c-subject"`) {
		t.Fatalf("reasons differ or are wrong:\n%s\n%s", ra, rb)
	}
	checkfor.Until(t, 20*time.Second, "consumers idle", func() bool {
		return consumerIdle(t, env.Bus, "kitfetcher-like") && consumerIdle(t, env.Bus, "booker-like")
	})
	if calls.Load() != 0 {
		t.Fatalf("handlers called %d times", calls.Load())
	}
	// The campaign is unclear, so nothing is resolved for either id.
	for _, c := range []string{"c-subject", "c-other"} {
		if n := subjectCount(t, env.Bus, bus.StreamEvents, events.KindSellerSkipped.SubjectFor(c)); n != 0 {
			t.Fatalf("%d SellerSkipped for %s", n, c)
		}
	}
	// And no stage can make such an event in the first place.
	if _, err := events.New(events.KindSellerFound, "mismatch-2", "test", "c-subject", sellerFound("c-other")); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("a mismatched event made: %v", err)
	}
}

// TestEventSizeLimit: above events.MaxEventBytes an event is refused at
// publish and dead-lettered at consume.
func TestEventSizeLimit(t *testing.T) {
	env := natstest.Start(t)
	var calls atomic.Int32
	run(t, env.Bus, stage("sized"), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		calls.Add(1)
		return nil, nil
	})
	big := events.CampaignRequested{CampaignID: "c-big", Brief: sampleBrief, RequestedAt: time.Now()}
	big.Brief.TargetAudience = map[string]any{"blob": strings.Repeat("x", events.MaxEventBytes)}
	e, err := events.New(events.KindCampaignRequested, "big-1", "test", "c-big", big)
	if err != nil {
		t.Fatal(err)
	}
	err = env.Bus.Publish(t.Context(), e)
	var oe *bus.OutputError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "byte event limit") {
		t.Fatalf("publish of an oversized event: %v", err)
	}
	publishRaw(t, env.Bus, events.KindCampaignRequested, "big-2", "c-big", big)
	dl := dlqMessages(t, env.Bus, "sized", 1)
	if r := dl[0].Header.Get(bus.HeaderDLQReason); !strings.Contains(r, "byte event limit") {
		t.Fatalf("reason %q", r)
	}
	// Just below the limit is fine.
	small := big
	small.Brief.TargetAudience = map[string]any{"blob": strings.Repeat("x", events.MaxEventBytes-2048)}
	e, _ = events.New(events.KindCampaignRequested, "small-1", "test", "c-big", small)
	if err := env.Bus.Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	checkfor.Until(t, 20*time.Second, "the handler", func() bool { return calls.Load() == 1 })
}

// TestInvalidOutputIsTheProducersError: a handler returning a
// schema-invalid event publishes nothing; the failure is logged at ERROR
// with the violation and the input, the input is retried, then
// dead-lettered with the violation as the reason.
func TestInvalidOutputIsTheProducersError(t *testing.T) {
	env := natstest.Start(t)
	var logs natstest.LogBuffer
	b := env.Connect(t, "producer")
	b.Log = zerolog.New(&logs)
	var calls atomic.Int32
	run(t, b, stage("buggy"), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		calls.Add(1)
		good, err := events.Derive(in, events.KindSellerSkipped, "buggy", "good", events.SellerSkipped{
			CampaignID: in.Subject(), SellerURL: "http://s", Stage: "buggy", Code: "test", Reason: "fine"})
		if err != nil {
			return nil, err
		}
		// DealBooked without most of its required fields, a float CPM.
		bad, err := events.Derive(in, events.KindDealBooked, "buggy", "bad", map[string]any{"campaign_id": in.Subject(), "cpm_micros": 1.5})
		if err != nil {
			return nil, err
		}
		return []events.Event{good, bad}, nil
	})
	in := natstest.PublishRequest(t, env.Bus, "c-buggy")
	dl := dlqMessages(t, env.Bus, "buggy", 1)
	r := dl[0].Header.Get(bus.HeaderDLQReason)
	if !strings.HasPrefix(r, "output DealBooked violates its schema: ") || !strings.Contains(r, "cpm_micros") {
		t.Fatalf("reason %q", r)
	}
	if got := dl[0].Header.Get("ce-id"); got != in.ID() {
		t.Fatalf("dead letter is %q, want the input %q", got, in.ID())
	}
	if calls.Load() != 4 { // MaxDeliver
		t.Fatalf("handler called %d times, want 4 (retried, then dead-lettered)", calls.Load())
	}
	for _, k := range []events.Kind{events.KindDealBooked, events.KindSellerSkipped} {
		if n := subjectCount(t, env.Bus, bus.StreamEvents, k.SubjectFor("c-buggy")); n != 0 {
			t.Fatalf("%d %s published; an invalid output must publish nothing", n, k.Name)
		}
	}
	var found bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, "violates its schema") &&
			strings.Contains(line, `"input_event_id":"`+in.ID()+`"`) && strings.Contains(line, `"input_event_type":"`+in.Type()+`"`) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no ERROR line with the violation and the input:\n%s", logs.String())
	}
}

// TestDeadLetteredPackageResolvesItsSeller: a dead-lettered PackageFound
// publishes one SellerSkipped (code dead_lettered, the package's id) for its
// campaign, with an id derived from the event's, once however often the
// dead-letter path runs.
func TestDeadLetteredPackageResolvesItsSeller(t *testing.T) {
	env := natstest.Start(t)
	run(t, env.Bus, stageOn("negotiator", events.KindPackageFound), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		return nil, bus.Permanent(errors.New("cannot negotiate this"))
	})
	pf := publishRaw(t, env.Bus, events.KindPackageFound, "pf-1", "c-dl", packageFound("c-dl"))
	dl := dlqMessages(t, env.Bus, "negotiator", 1)
	subj := events.KindSellerSkipped.SubjectFor("c-dl")
	sk := lastEvent(t, env.Bus, subj)
	p, err := events.PayloadOf[events.SellerSkipped](sk, events.KindSellerSkipped)
	if err != nil {
		t.Fatal(err)
	}
	want := events.SellerSkipped{CampaignID: "c-dl", SellerURL: "https://seller.example", SellerName: "Seller", Stage: "negotiator",
		Code: "dead_lettered", Reason: "negotiator dead-lettered PackageFound pf-1: cannot negotiate this", PackageID: "pkg-7", PackagesTotal: 2}
	if p != want {
		t.Fatalf("got  %+v\nwant %+v", p, want)
	}
	if sk.ID() != events.ChildID(pf.ID(), "negotiator", "dead_lettered") || sk.Source() != "/dealflow/negotiator" {
		t.Fatalf("id %s source %s", sk.ID(), sk.Source())
	}
	// The dead-letter path again (a redelivery after a crash between the
	// dead letter and the term): still one SellerSkipped.
	for range 2 {
		if err := env.Bus.ResolveDeadLetter(t.Context(), "negotiator", dl[0].Header, dl[0].Data, "cannot negotiate this"); err != nil {
			t.Fatal(err)
		}
	}
	if n := subjectCount(t, env.Bus, bus.StreamEvents, subj); n != 1 {
		t.Fatalf("%d SellerSkipped, want 1", n)
	}
}

// TestDeadLetteredSellerFoundSkipsTheSeller: a dead-lettered SellerFound
// skips the whole seller (no package_id).
func TestDeadLetteredSellerFoundSkipsTheSeller(t *testing.T) {
	env := natstest.Start(t)
	run(t, env.Bus, stageOn("kitfetcher", events.KindSellerFound), func(ctx context.Context, in events.Event, p any) ([]events.Event, error) {
		return nil, bus.Permanent(errors.New("boom"))
	})
	publishRaw(t, env.Bus, events.KindSellerFound, "sf-1", "c-sf", sellerFound("c-sf"))
	sk := lastEvent(t, env.Bus, events.KindSellerSkipped.SubjectFor("c-sf"))
	p, err := events.PayloadOf[events.SellerSkipped](sk, events.KindSellerSkipped)
	if err != nil {
		t.Fatal(err)
	}
	if p.PackageID != "" || p.SellerURL != "https://seller.example" || p.Code != events.SkipDeadLettered || p.Stage != "kitfetcher" {
		t.Fatalf("%+v", p)
	}
}
