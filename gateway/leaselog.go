package gateway

import (
	"context"
	"log/slog"
	"time"
)

// logLease logs msg about lease l, with err when it is not nil, building
// the attributes only when the logger takes records of that level. It
// allocates little: a grant is logged for every request.
func (t *Table) logLease(level slog.Level, msg string, l *Lease, now time.Time, err ...error) {
	if !t.log.Enabled(context.Background(), level) {
		return
	}
	attrs := [2]slog.Attr{leaseAttrs(l, now)}
	n := 1
	if len(err) > 0 && err[0] != nil {
		attrs[1] = slog.Any("err", err[0])
		n++
	}
	t.log.LogAttrs(context.Background(), level, msg, attrs[:n]...)
}

func leaseAttrs(l *Lease, now time.Time) slog.Attr {
	lifetime := slog.String("lifetime", "permanent")
	if !l.Expires.IsZero() {
		lifetime = slog.Duration("lifetime", l.Lifetime(now))
	}
	port := slog.Int("eport", int(l.ExternalPort))
	if l.Pinhole {
		port = slog.Int("pinhole", int(l.PinholeID)) // its port is the internal one
	}
	return slog.GroupAttrs("lease",
		slog.String("proto", l.Protocol.String()),
		slog.Any("internal", l.Internal),
		port,
		slog.Int("filters", len(l.Filters)),
		slog.String("origin", l.Origin.String()),
		lifetime,
	)
}
