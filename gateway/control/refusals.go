package control

import (
	"log/slog"
	"sync"
	"time"
)

// refusalInterval is the least time between two logs of refused peers: a
// process that reconnects in a loop must not flood the log.
const refusalInterval = time.Minute

// refusalLog logs refused peers at most once every refusalInterval, each
// log with the number of refusals not logged since the last.
type refusalLog struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	last       time.Time // zero: none logged yet
	suppressed int
}

func newRefusalLog(log *slog.Logger, now func() time.Time) *refusalLog {
	return &refusalLog{log: log, now: now}
}

// refused notes one refused peer.
func (l *refusalLog) refused(c Cred, err error) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < refusalInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.last = now
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	l.log.Warn("control socket: peer refused", "pid", c.PID, "uid", c.UID, "gid", c.GID, "groups", c.Groups,
		"err", err, "refused_since_last_log", suppressed)
}
