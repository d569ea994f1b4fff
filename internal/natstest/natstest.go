// Package natstest starts a real in-process JetStream server for tests:
// random port, temporary file store, provisioned streams and buckets.
package natstest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/dealflow/dealflow/internal/bus"
	"github.com/dealflow/dealflow/internal/embednats"
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
