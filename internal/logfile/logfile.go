// Package logfile writes the toolkit's own log, [runtime] log-file, which
// the wrapper and the hook share: one format, one level setting.
package logfile

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// levels are the values of [runtime] log-level.
var levels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// New returns a logger that appends to the file at path the records at or
// above level (a [runtime] log-level value), one line each, with the pid.
// The file and its folder are made at the first line, so that a process that
// logs nothing leaves none; lines that cannot be written are dropped, as a
// failure is also told on stderr.
func New(path, level string) *slog.Logger {
	w := &appender{path: path}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: levels[level], ReplaceAttr: inUTC})).With("pid", os.Getpid())
}

// inUTC writes the record's time in UTC: the same in the wrapper's and the
// hooks' lines whatever their environment's TZ, and no zone file is read.
func inUTC(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		a.Value = slog.TimeValue(a.Value.Time().UTC())
	}
	return a
}

// appender opens its file at the first write, close-on-exec (the wrapper
// becomes the low-level runtime) and closed at exit.
type appender struct {
	path string
	once sync.Once
	f    *os.File
}

func (a *appender) Write(p []byte) (int, error) {
	a.once.Do(func() {
		if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
			return
		}
		a.f, _ = os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	})
	if a.f == nil {
		return len(p), nil
	}
	return a.f.Write(p)
}
