//go:build unix

package syslogx

import (
	"fmt"
	"log/slog"
	"log/syslog"
)

// New connects to the local syslog daemon as tag, facility daemon, and
// returns a handler that logs records at level or above.
func New(tag string, level slog.Leveler) (*Handler, error) {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, tag)
	if err != nil {
		return nil, fmt.Errorf("syslogx: connect to syslog: %w", err)
	}
	return newHandler(w, level), nil
}
