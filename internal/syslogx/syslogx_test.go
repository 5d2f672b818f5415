package syslogx

import (
	"log/slog"
	"testing"
)

// recorder is a sink that keeps what it is sent, by severity.
type recorder struct{ got []string }

func (r *recorder) Err(m string) error     { r.got = append(r.got, "err: "+m); return nil }
func (r *recorder) Warning(m string) error { r.got = append(r.got, "warning: "+m); return nil }
func (r *recorder) Info(m string) error    { r.got = append(r.got, "info: "+m); return nil }
func (r *recorder) Debug(m string) error   { r.got = append(r.got, "debug: "+m); return nil }
func (r *recorder) Close() error           { return nil }

func TestHandlerSeverities(t *testing.T) {
	rec := new(recorder)
	log := slog.New(newHandler(rec, slog.LevelDebug)).With("file", "ports.csv")
	log.Debug("renewed", "port", 8080)
	log.Info("mapped", "port", 8080)
	log.Warn("retry", "port", 8080)
	log.Error("failed", "port", 8080)
	want := []string{
		"debug: msg=renewed file=ports.csv port=8080",
		"info: msg=mapped file=ports.csv port=8080",
		"warning: msg=retry file=ports.csv port=8080",
		"err: msg=failed file=ports.csv port=8080",
	}
	if len(rec.got) != len(want) {
		t.Fatalf("sent %q; want %q", rec.got, want)
	}
	for i := range want {
		if rec.got[i] != want[i] {
			t.Errorf("record %d = %q; want %q", i, rec.got[i], want[i])
		}
	}
}

func TestHandlerLevel(t *testing.T) {
	rec := new(recorder)
	log := slog.New(newHandler(rec, slog.LevelWarn))
	log.Info("mapped")
	log.Warn("retry")
	if len(rec.got) != 1 || rec.got[0] != "warning: msg=retry" {
		t.Fatalf("at level warn sent %q; want only the warning", rec.got)
	}
}
