package main

import (
	"bytes"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirWatcher watches a directory for files written, moved in or created,
// with inotify.
type dirWatcher struct {
	f       *os.File
	buf     []byte
	pending []string
}

func newDirWatcher(dir string) (*dirWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_DELETE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify: watch %s: %w", dir, err)
	}
	// A non-blocking descriptor joins the runtime's poller, so Close
	// unblocks a pending read.
	return &dirWatcher{f: os.NewFile(uintptr(fd), "inotify"), buf: make([]byte, 64*1024)}, nil
}

// next returns the name of the next file that changed.
func (w *dirWatcher) next() (string, error) {
	for len(w.pending) == 0 {
		n, err := w.f.Read(w.buf)
		if err != nil {
			return "", err
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			start := off + unix.SizeofInotifyEvent
			end := start + int(ev.Len)
			if end > n {
				break
			}
			name := string(bytes.TrimRight(w.buf[start:end], "\x00"))
			w.pending = append(w.pending, name)
			off = end
		}
	}
	name := w.pending[0]
	w.pending = w.pending[1:]
	return name, nil
}

func (w *dirWatcher) Close() error { return w.f.Close() }
