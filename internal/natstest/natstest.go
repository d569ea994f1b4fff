// Package natstest starts a real in-process JetStream server for tests:
// random port, temporary file store, provisioned streams and buckets.
package natstest

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/embednats"
	"github.com/dealflow/dealflow/pkg/events"
)

// Env is a running server and a provisioned bus connected to it over TCP.
type Env struct {
	Server *embednats.Server
	Bus    *bus.Bus
	URL    string
}

// Start starts a server for t and closes everything when t ends.
func Start(t testing.TB) *Env {
	t.Helper()
	s, err := embednats.Start(embednats.Options{StoreDir: t.TempDir(), Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e := &Env{Server: s, URL: s.ClientURL()}
	e.Bus = e.Connect(t, "test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Bus.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// Connect opens another connection (another "replica") to the server.
func (e *Env) Connect(t testing.TB, name string) *bus.Bus {
	t.Helper()
	log := Logger()
	nc, err := nats.Connect(e.URL, bus.ConnectOptions(name, log)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	b, err := bus.New(nc, bus.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Logger is silent unless DEALFLOW_TEST_LOG is set.
func Logger() zerolog.Logger {
	if os.Getenv("DEALFLOW_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
}

// SubjectCount is how many messages the events stream holds on subject, for
// tests of stages that must not import NATS themselves.
func (e *Env) SubjectCount(t testing.TB, subject string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.Bus.JS.Stream(ctx, bus.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// LogBuffer is a log sink (or captured stdout) safe for concurrent writers
// and a reading test.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// PublishRequest publishes a minimal valid CampaignRequested for campaign
// and returns it.
func PublishRequest(t testing.TB, b *bus.Bus, campaign string) events.Event {
	t.Helper()
	e, err := events.New(events.KindCampaignRequested, events.NewID(), "test", campaign, events.CampaignRequested{
		CampaignID: campaign, Brief: events.Brief{Name: "n", BudgetMicros: events.MustMicros(1), StartDate: "2028-06-01", EndDate: "2028-06-02"},
		RequestedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return e
}
