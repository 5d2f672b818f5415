package syslogx

import (
	"fmt"
	"log/slog"

	"golang.org/x/sys/windows/svc/eventlog"
)

// eventID is the event identifier of every record: the message carries
// the text, and one source has one kind of event.
const eventID = 1

// New opens the Event Log (the Application log) with tag as the event
// source and returns a handler that logs records at level or above. The
// source should be registered once by an administrator (eventcreate's
// message file; see the README); an unregistered source still logs, and
// the Event Viewer shows each message after a note that it finds no
// description for the event ID.
func New(tag string, level slog.Leveler) (*Handler, error) {
	l, err := eventlog.Open(tag)
	if err != nil {
		return nil, fmt.Errorf("syslogx: open the event log as %s: %w", tag, err)
	}
	return newHandler(eventLog{l}, level), nil
}

// eventLog maps syslog's severities to the Event Log's three types; debug
// records are information events.
type eventLog struct{ l *eventlog.Log }

func (e eventLog) Err(msg string) error     { return e.l.Error(eventID, msg) }
func (e eventLog) Warning(msg string) error { return e.l.Warning(eventID, msg) }
func (e eventLog) Info(msg string) error    { return e.l.Info(eventID, msg) }
func (e eventLog) Debug(msg string) error   { return e.l.Info(eventID, msg) }
func (e eventLog) Close() error             { return e.l.Close() }
