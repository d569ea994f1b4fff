package telemetry

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// TimeLayout is the JSON logs' timestamp: RFC 3339 to the millisecond, UTC.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// ConsoleTimeLayout is the console logs' timestamp (local time).
const ConsoleTimeLayout = "15:04:05.000"

// NewLogger builds the process logger: level is one of trace, debug, info,
// warn, error, fatal, panic, disabled (empty means info; anything else is an
// error). jsonOut writes one JSON object a line; otherwise a console format,
// coloured only when w is a terminal. Timestamps are to the millisecond.
func NewLogger(level string, jsonOut bool, w io.Writer) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if s := strings.TrimSpace(strings.ToLower(level)); s != "" {
		l, err := zerolog.ParseLevel(s)
		if err != nil || l == zerolog.NoLevel {
			return zerolog.Nop(), fmt.Errorf("unknown log level %q (want trace, debug, info, warn, error, fatal, panic or disabled)", level)
		}
		lvl = l
	}
	out := w
	if !jsonOut {
		out = zerolog.ConsoleWriter{Out: w, NoColor: !IsTerminal(w), TimeFormat: ConsoleTimeLayout}
	}
	// The timestamp hook formats to the millisecond without touching
	// zerolog's global TimeFieldFormat.
	return zerolog.New(out).Level(lvl).Hook(timestampHook{}), nil
}

type timestampHook struct{}

// Run implements zerolog.Hook.
func (timestampHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().UTC().Format(TimeLayout))
}

// IsTerminal reports whether w is a terminal (colour is only for those).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}
