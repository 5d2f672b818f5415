package main

import (
	"log/slog"
	"strings"
)

// logWriter turns what is written to it into error records of log, a
// record a line: it stands for standard error where no one reads it (a
// Windows service).
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.log.Error(line)
		}
	}
	return len(p), nil
}
