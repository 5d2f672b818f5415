// Package syslogx is a log/slog handler that writes to the system's log:
// syslog on unix, with each record's level mapped to a syslog severity
// (RFC 5424 §6.2.1), and the Event Log on Windows, with each level mapped
// to an event type (error, warning, information).
package syslogx

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// sink is the system log: one method per severity.
type sink interface {
	Err(msg string) error
	Warning(msg string) error
	Info(msg string) error
	Debug(msg string) error
	Close() error
}

// Handler formats records as logfmt (slog.TextHandler, without the time and
// level, which the system log records itself) and sends each one to the
// system log at the severity of its level.
type Handler struct {
	w     sink
	level slog.Leveler
	mu    *sync.Mutex
	buf   *bytes.Buffer
	text  slog.Handler
}

// newHandler returns a handler that sends records at level or above to w.
func newHandler(w sink, level slog.Leveler) *Handler {
	buf := new(bytes.Buffer)
	text := slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return &Handler{w: w, level: level, mu: new(sync.Mutex), buf: buf, text: text}
}

// Enabled reports whether records at l are logged.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle sends r to the system log.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	msg := string(bytes.TrimRight(h.buf.Bytes(), "\n"))
	switch {
	case r.Level >= slog.LevelError:
		return h.w.Err(msg)
	case r.Level >= slog.LevelWarn:
		return h.w.Warning(msg)
	case r.Level >= slog.LevelInfo:
		return h.w.Info(msg)
	default:
		return h.w.Debug(msg)
	}
}

// WithAttrs returns a handler whose records carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(attrs)
	return &c
}

// WithGroup returns a handler that puts later attributes in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	c.text = h.text.WithGroup(name)
	return &c
}

// Close disconnects from the system log.
func (h *Handler) Close() error { return h.w.Close() }
