package gateway

import (
	"errors"
	"log/slog"
	"time"

	"github.com/portlease/portlease/gateway/ratelimit"
)

// refusalLogs hold back the records of the refusals a host can have again
// at will by asking again: its share is full (ErrHostQuota), or the table or
// the allowed ports are (ErrOutOfResources). Each is logged at most once per
// ratelimit.DefaultLogInterval per requesting host, with the number refused
// since, so that a hostile host cannot fill the log; the other refusals
// (ErrNotAuthorized, ErrConflict) are logged one by one, as they tell the
// operator of a client or a rule to fix.
type refusalLogs struct {
	share, full *ratelimit.RefusalLog
}

func newRefusalLogs(log *slog.Logger, now func() time.Time) refusalLogs {
	cfg := func(msg string) ratelimit.RefusalLogConfig {
		return ratelimit.RefusalLogConfig{Message: msg, Level: slog.LevelInfo, Logger: log, Now: now}
	}
	return refusalLogs{
		share: ratelimit.NewRefusalLog(cfg("refused: host at its share")),
		full:  ratelimit.NewRefusalLog(cfg("refused: out of resources")),
	}
}

// logRefusal logs Map's refusal of req with err, if err is a refusal.
func (t *Table) logRefusal(req *MapRequest, err error) {
	args := []any{"proto", req.Protocol, "internal", req.Internal, "eport", req.ExternalPort, "origin", req.Origin, "err", err}
	switch {
	case errors.Is(err, ErrHostQuota):
		t.refusals.share.Note(req.requester(), args...)
	case errors.Is(err, ErrOutOfResources):
		t.refusals.full.Note(req.requester(), args...)
	case errors.Is(err, ErrNotAuthorized), errors.Is(err, ErrConflict):
		t.log.Info("refused", args...)
	}
}
