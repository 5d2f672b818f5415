package ratelimit

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// RefusalLogConfig describes a RefusalLog.
type RefusalLogConfig struct {
	// Message is the log record's message, e.g. "requests over the rate
	// refused".
	Message string
	// Level is the records' level.
	Level slog.Level
	// Interval is the least time between two records of one host's
	// refusals. Zero: DefaultLogInterval.
	Interval time.Duration
	// MaxHosts bounds the number of hosts whose refusals are counted; the
	// idlest one's count is logged and dropped when a new host comes.
	// Zero: DefaultMaxHosts.
	MaxHosts int
	// Logger receives the records. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// RefusalLog logs the refusals of each host at most once per interval, with
// the number refused since the host's last record, so that a host that
// keeps asking for what it is refused cannot fill the log. A host's first
// refusal is logged at once. Its methods are safe for concurrent use; a nil
// *RefusalLog logs nothing.
type RefusalLog struct {
	msg      string
	level    slog.Level
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	hosts *hostTable[tally]
}

// tally is one host's refusals not logged yet.
type tally struct {
	refused  int
	loggedAt time.Time // when the last record was written; zero: never
}

// NewRefusalLog returns a RefusalLog configured by cfg.
func NewRefusalLog(cfg RefusalLogConfig) *RefusalLog {
	r := &RefusalLog{
		msg:      cfg.Message,
		level:    cfg.Level,
		interval: cfg.Interval,
		log:      cfg.Logger,
		now:      cfg.Now,
		hosts:    newHostTable[tally](cfg.MaxHosts),
	}
	if r.hosts.max <= 0 {
		r.hosts.max = DefaultMaxHosts
	}
	if r.interval <= 0 {
		r.interval = DefaultLogInterval
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r
}

// Note counts one refusal of host. When host has had no record for an
// interval (or never), it writes one: host, the number refused since the
// last one (this refusal included), and args, which describe this refusal
// (key-value pairs as slog takes them). It costs O(1).
func (r *RefusalLog) Note(host netip.Addr, args ...any) {
	if r == nil {
		return
	}
	host = host.Unmap()
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	e, _ := r.hosts.use(host, r.evicted)
	t := &e.val
	t.refused++
	if t.loggedAt.IsZero() || now.Sub(t.loggedAt) >= r.interval {
		r.write(host, t.refused, args)
		t.refused = 0
		t.loggedAt = now
	}
}

// Hosts returns the number of hosts whose refusals are counted.
func (r *RefusalLog) Hosts() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hosts.len()
}

// evicted logs the refusals not logged yet of a host whose count is
// dropped.
func (r *RefusalLog) evicted(host netip.Addr, t *tally) {
	if t.refused > 0 {
		r.write(host, t.refused, nil)
	}
}

func (r *RefusalLog) write(host netip.Addr, refused int, args []any) {
	r.log.Log(context.Background(), r.level, r.msg, append([]any{"host", host, "refused", refused}, args...)...)
}
