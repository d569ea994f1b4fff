package events

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestArenaDeriveMatchesDerive: an arena's event is Derive's event, field
// for field and on the wire, for every kind, also when its memory served a
// larger event before (no bytes of that one may show) and for payloads the
// JSON encoder escapes.
func TestArenaDeriveMatchesDerive(t *testing.T) {
	parent, err := New(KindCampaignRequested, NewID(), "test", "c-1", CampaignRequested{CampaignID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	payloads := samplePayloads()
	payloads[KindSellerSkipped.Type] = SellerSkipped{CampaignID: "c-1", SellerURL: "http://s/?a=1&b=<2>", Stage: StageKitfetcher, Code: "x",
		Reason: "deal value $100000 >= high threshold; \u2028 line separator, \"quotes\", " + strings.Repeat("long ", 500)}
	check := func(a *Arena) {
		t.Helper()
		for typ, p := range payloads {
			k, _ := KindOf(typ)
			got, err := a.Derive(parent, k, StageKitfetcher, "key", p)
			if err != nil {
				t.Fatalf("%s: %v", k.Name, err)
			}
			want, err := Derive(parent, k, StageKitfetcher, "key", p)
			if err != nil {
				t.Fatal(err)
			}
			want.SetTime(got.Time())
			if err := got.Validate(); err != nil {
				t.Fatalf("%s: %v", k.Name, err)
			}
			if got.String() != want.String() || !bytes.Equal(got.Data(), want.Data()) {
				t.Fatalf("%s: the arena built\n%s\nDerive builds\n%s", k.Name, got, want)
			}
			gm, err1 := Encode(got, "s")
			wm, err2 := Encode(want, "s")
			if err1 != nil || err2 != nil || !reflect.DeepEqual(gm, wm) {
				t.Fatalf("%s: wire forms differ (%v, %v):\n%v\n%v", k.Name, err1, err2, gm, wm)
			}
		}
	}
	for range 5 { // released memory serves the next rounds
		a := NewArena()
		check(a)
		a.Release()
	}
	var none *Arena // outside a runner: Derive's own events
	check(none)
	none.Release()
}

// TestArenaEventsKeepTheirDataUntilRelease: events built one after another
// in one arena do not share memory, and a released event's memory serves
// a later build.
func TestArenaEventsKeepTheirDataUntilRelease(t *testing.T) {
	parent, err := New(KindCampaignRequested, NewID(), "test", "c-1", CampaignRequested{CampaignID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	skipped := func(i int) SellerSkipped {
		return SellerSkipped{CampaignID: "c-1", SellerURL: "http://s/" + strings.Repeat("x", i), Stage: StageKitfetcher, Code: "c", Reason: "r"}
	}
	a := NewArena()
	var built []Event
	want := map[int]string{}
	for i := range 50 {
		e, err := a.Derive(parent, KindSellerSkipped, StageKitfetcher, string(rune('a'+i)), skipped(i))
		if err != nil {
			t.Fatal(err)
		}
		built, want[i] = append(built, e), string(e.Data())
		e.SetExtension("n", i) // the runner sets the traceparent like this
	}
	for i, e := range built {
		if string(e.Data()) != want[i] || e.Extensions()["n"] != int32(i) {
			t.Fatalf("event %d changed after later builds: %s %v", i, e.Data(), e.Extensions())
		}
	}
	released := map[*byte]bool{}
	for _, e := range built {
		released[&e.Data()[:1][0]] = true
	}
	a.Release()
	// sync.Pool gives no promise for one Get (the race detector even drops
	// some Puts on purpose), but out of 50 builds some reuse memory.
	b := NewArena()
	defer b.Release()
	reused := 0
	for i := range 50 {
		e, err := b.Derive(parent, KindSellerSkipped, StageKitfetcher, "again", skipped(i))
		if err != nil {
			t.Fatal(err)
		}
		if released[&e.Data()[:1][0]] {
			reused++
		}
		if _, ok := e.Extensions()["n"]; ok {
			t.Fatalf("a reused event keeps an extension of the released one: %v", e.Extensions())
		}
	}
	if reused == 0 {
		t.Fatal("no build reused a released event's data")
	}
}

// TestArenaIsSafeForConcurrentBuilds: a handler may build its outputs from
// several goroutines (run with -race).
func TestArenaIsSafeForConcurrentBuilds(t *testing.T) {
	parent, err := New(KindCampaignRequested, NewID(), "test", "c-1", CampaignRequested{CampaignID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	a := NewArena()
	ctx := WithArena(context.Background(), a)
	if ArenaFrom(ctx) != a || ArenaFrom(context.Background()) != nil {
		t.Fatal("ArenaFrom does not return the arena WithArena put in")
	}
	var wg sync.WaitGroup
	out := make([]Event, 8)
	for i := range out {
		wg.Go(func() {
			out[i], _ = ArenaFrom(ctx).Derive(parent, KindSellerSkipped, StageKitfetcher, string(rune('a'+i)),
				SellerSkipped{CampaignID: "c-1", SellerURL: "http://s", Stage: StageKitfetcher, Code: "c", Reason: strings.Repeat("r", i)})
		})
	}
	wg.Wait()
	for i, e := range out {
		if !bytes.Contains(e.Data(), []byte(`"reason":"`+strings.Repeat("r", i)+`"`)) {
			t.Fatalf("event %d: %s", i, e.Data())
		}
	}
	if len(a.built) != len(out) {
		t.Fatalf("the arena holds %d events, want %d", len(a.built), len(out))
	}
	a.Release()
}

// BenchmarkDerive compares a PackageFound built by Derive with one built
// in an arena released after each handling, as the stage runner does.
func BenchmarkDerive(b *testing.B) {
	parent, _ := New(KindCampaignRequested, NewID(), "test", "c-1", CampaignRequested{CampaignID: "c-1"})
	p := samplePayloads()[KindPackageFound.Type]
	b.Run("heap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Derive(parent, KindPackageFound, StageKitfetcher, "pkg", p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("arena", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a := NewArena()
			if _, err := a.Derive(parent, KindPackageFound, StageKitfetcher, "pkg", p); err != nil {
				b.Fatal(err)
			}
			a.Release()
		}
	})
}
