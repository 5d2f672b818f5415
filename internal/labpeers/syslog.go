package labpeers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// severity names a syslog severity (RFC 5424 §6.2.1), as syslog.h spells it.
func severity(s int) string {
	switch s {
	case 0:
		return "emerg"
	case 1:
		return "alert"
	case 2:
		return "crit"
	case 3:
		return "err"
	case 4:
		return "warning"
	case 5:
		return "notice"
	case 6:
		return "info"
	default:
		return "debug"
	}
}

// startSyslog listens for syslog datagrams on a Unix socket in a new
// temporary directory, and appends each message to w as one line starting
// with its severity, until the test ends. It returns the socket's path. The
// directory is not t.TempDir(): a socket path must be shorter than 108
// bytes, and test names can be long.
func startSyslog(t testing.TB, w io.Writer) (string, error) {
	dir, err := os.MkdirTemp("", "labpeers-")
	if err != nil {
		return "", fmt.Errorf("labpeers: syslog: %w", err)
	}
	path := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("labpeers: syslog: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- copySyslog(w, conn) }()
	t.Cleanup(func() {
		conn.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
		os.RemoveAll(dir)
	})
	return path, nil
}

// copySyslog writes every message read from conn to w, until conn is
// closed.
func copySyslog(w io.Writer, conn net.PacketConn) error {
	buf := make([]byte, 8192)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("labpeers: syslog: %w", err)
		}
		if _, err := io.WriteString(w, formatSyslog(string(buf[:n]))); err != nil {
			return fmt.Errorf("labpeers: syslog: %w", err)
		}
	}
}

// formatSyslog turns a message as glibc's syslog(3) sends it,
// "<PRI>Mmm dd hh:mm:ss tag[pid]: text", into one line, "severity: Mmm dd
// hh:mm:ss tag[pid]: text\n".
func formatSyslog(msg string) string {
	msg = strings.TrimRight(msg, "\n\x00")
	if rest, ok := strings.CutPrefix(msg, "<"); ok {
		if pri, text, ok := strings.Cut(rest, ">"); ok {
			if p, err := strconv.Atoi(pri); err == nil && p >= 0 {
				msg = severity(p%8) + ": " + text
			}
		}
	}
	return strings.ReplaceAll(msg, "\n", " ") + "\n"
}
