// Package embednats runs an in-process nats-server with JetStream, the
// project's default deployment: one binary, no external broker.
package embednats

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// Options configure the embedded server.
type Options struct {
	// StoreDir is where JetStream keeps its file store. Empty means a new
	// temporary directory that Close removes.
	StoreDir string
	// Host and Port of the client listener. Port 0 picks a free port; a
	// negative port means no TCP listener (in-process connections only).
	Host string
	Port int
	// HTTPPort serves the server's monitoring endpoints (/healthz, /varz,
	// /jsz, ...) on the client host when > 0 (with a ConfigFile too, unless
	// the file sets its own).
	HTTPPort int
	// MaxStore caps the JetStream file store in bytes (default 8 GiB).
	MaxStore int64
	// SyncAlways fsyncs every write: survives power loss, costs latency.
	SyncAlways bool
	// ConfigFile, when set, is parsed with the server's own config parser
	// (the same file a cluster node uses); the fields above then only fill
	// in what the file leaves unset.
	ConfigFile string
	// Logger receives the server's log lines; zero disables them.
	Logger *zerolog.Logger
}

// LockFile is the file in the store directory that a running server holds
// locked, so a second process on the same directory fails at once.
const LockFile = "dealflow.lock"

// Server is a running embedded nats-server.
type Server struct {
	*server.Server
	tempDir string
	lock    *os.File
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	opts := &server.Options{}
	if o.ConfigFile != "" {
		fo, err := server.ProcessConfigFile(o.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("embednats: config %s: %w", o.ConfigFile, err)
		}
		opts = fo
	}
	opts.JetStream = true
	opts.NoSigs = true
	if opts.ServerName == "" {
		opts.ServerName = "dealflow"
	}
	s := &Server{}
	if opts.StoreDir == "" {
		if o.StoreDir == "" {
			dir, err := os.MkdirTemp("", "dealflow-nats-")
			if err != nil {
				return nil, fmt.Errorf("embednats: temp store: %w", err)
			}
			s.tempDir = dir
			o.StoreDir = dir
		}
		opts.StoreDir = o.StoreDir
	}
	lock, err := lockDir(opts.StoreDir)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.lock = lock
	if o.ConfigFile == "" {
		opts.Host = o.Host
		if opts.Host == "" {
			opts.Host = "127.0.0.1"
		}
		switch {
		case o.Port < 0:
			opts.DontListen = true
		case o.Port == 0:
			opts.Port = server.RANDOM_PORT
		default:
			opts.Port = o.Port
		}
		opts.JetStreamMaxStore = o.MaxStore
		if opts.JetStreamMaxStore == 0 {
			opts.JetStreamMaxStore = 8 << 30
		}
		opts.JetStreamMaxMemory = 256 << 20
		opts.SyncAlways = o.SyncAlways
	}
	// The monitoring port (/varz, /jsz, /healthz: what nats-server tooling
	// and the Prometheus NATS exporter read) binds the client host; a
	// config file's own http port wins.
	if o.HTTPPort > 0 && opts.HTTPPort == 0 {
		opts.HTTPHost = opts.Host
		if opts.HTTPHost == "" {
			opts.HTTPHost = "127.0.0.1"
		}
		opts.HTTPPort = o.HTTPPort
	}
	if o.Logger == nil {
		opts.NoLog = true
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("embednats: %w", err)
	}
	if o.Logger != nil {
		ns.SetLoggerV2(zlog{l: o.Logger.With().Str("component", "nats-server").Logger()}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		s.cleanup()
		return nil, errors.New("embednats: server not ready within 15s")
	}
	s.Server = ns
	return s, nil
}

// Close shuts the server down and removes a temporary store. It is safe to
// call more than once.
func (s *Server) Close() {
	if s == nil || s.Server == nil {
		return
	}
	s.Shutdown()
	s.WaitForShutdown()
	s.cleanup()
}

func (s *Server) cleanup() {
	unlockDir(s.lock)
	s.lock = nil
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
		s.tempDir = ""
	}
}

// zlog adapts zerolog to the server's Logger interface.
type zlog struct{ l zerolog.Logger }

// Noticef logs at info level.
func (z zlog) Noticef(f string, a ...any) { z.l.Info().Msgf(f, a...) }

// Warnf logs at warn level.
func (z zlog) Warnf(f string, a ...any) { z.l.Warn().Msgf(f, a...) }

// Fatalf logs at error level; the embedding process decides whether to exit.
func (z zlog) Fatalf(f string, a ...any) { z.l.Error().Msgf(f, a...) }

// Errorf logs at error level.
func (z zlog) Errorf(f string, a ...any) { z.l.Error().Msgf(f, a...) }

// Debugf logs at debug level.
func (z zlog) Debugf(f string, a ...any) { z.l.Debug().Msgf(f, a...) }

// Tracef logs at trace level.
func (z zlog) Tracef(f string, a ...any) { z.l.Trace().Msgf(f, a...) }
