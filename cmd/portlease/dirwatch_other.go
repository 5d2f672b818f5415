//go:build !linux

package main

import (
	"errors"
	"fmt"
)

// dirWatcher would watch a directory; only Linux's inotify is used so far,
// and elsewhere the mapping file is read again every interval.
type dirWatcher struct{}

func newDirWatcher(string) (*dirWatcher, error) {
	return nil, fmt.Errorf("watching files (inotify, Linux only): %w", errors.ErrUnsupported)
}

func (*dirWatcher) next() (string, error) { return "", errors.ErrUnsupported }

func (*dirWatcher) Close() error { return nil }
