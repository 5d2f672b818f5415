package localport

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// tablesHold reports whether a socket of proto (TCP or UDP) of the calling
// thread's network namespace has port as its local port, in any state, by
// reading /proc/thread-self/net/{tcp,udp}{,6} (proc(5)). A table that
// cannot be read counts as holding the port: a port handed out over one of
// the gateway's own services takes their traffic, a port withheld costs
// nothing. A table missing because the family is not there (IPv6 off)
// holds nothing.
func tablesHold(proto uint8, port uint16) bool {
	name := "udp"
	if proto == unix.IPPROTO_TCP {
		name = "tcp"
	}
	for _, table := range []string{name, name + "6"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + table)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || tableHolds(b, port) {
			return true
		}
	}
	return false
}

// tableHolds reports whether a /proc/net/{tcp,udp}{,6} table b has a
// socket whose local address ("0100007F:1F90", the port in hexadecimal
// after the colon) has port. A line it cannot read counts as holding it.
func tableHolds(b []byte, port uint16) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		_, hex, ok := strings.Cut(fields[1], ":")
		n, err := strconv.ParseUint(hex, 16, 16)
		if !ok || err != nil || uint16(n) == port {
			return true
		}
	}
	return sc.Err() != nil
}
