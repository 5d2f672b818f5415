package statefile

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// t0 is the wall clock of the tests.
var t0 = time.Date(2026, 12, 6, 12, 0, 0, 123456789, time.UTC)

// testLease returns a lease of external port eport with every field set,
// varied by eport: IPv4 and IPv6 internal endpoints, permanent leases, PCP
// nonces and peers, UPnP descriptions in UTF-8.
func testLease(eport uint16) gateway.Lease {
	l := gateway.Lease{
		Protocol:     gateway.UDP,
		Internal:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + eport%200)}), 5000+eport),
		ExternalPort: eport,
		Origin:       gateway.OriginNATPMP,
		Created:      t0.Add(-time.Duration(eport) * time.Second),
		Expires:      t0.Add(time.Hour + time.Duration(eport)*time.Millisecond),
	}
	switch eport % 4 {
	case 1:
		l.Protocol = gateway.TCP
		l.Internal = netip.MustParseAddrPort(fmt.Sprintf("[2001:db8:100::%x]:%d", eport, eport))
		l.Origin = gateway.OriginPCP
		l.Nonce = [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, byte(eport)}
		l.Filters = []gateway.Filter{{Remote: netip.MustParsePrefix("2001:db8:203::2/128"), Port: 40000 + eport}}
	case 2:
		l.Origin = gateway.OriginUPnP
		l.Description = fmt.Sprintf("ed2k Port %d — Überweisung 端口", eport)
		l.Expires = time.Time{}
	case 3:
		l.Protocol = gateway.TCP
		l.Origin = gateway.OriginPCP
		l.Filters = []gateway.Filter{{Remote: netip.MustParsePrefix("203.0.113.2/32")}}
		l.Nonce = [12]byte{11: byte(eport)}
	}
	return l
}

func testLeases(first, n int) []gateway.Lease {
	out := make([]gateway.Lease, n)
	for i := range out {
		out[i] = testLease(uint16(first + i))
	}
	return out
}

// testLogger returns a logger that writes into the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(b, "\n")))
	return len(b), nil
}

// statePath returns a state file path in a directory of the test's own.
func statePath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "state", "leases")
}

// mustOpen opens path at now and closes it at the end of the test.
func mustOpen(t testing.TB, path string, now time.Time) (*File, Loaded) {
	t.Helper()
	f, ld, err := Open(path, now, testLogger(t))
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f, ld
}

// reopen closes f and opens its file again at now.
func reopen(t testing.TB, f *File, now time.Time) (*File, Loaded) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return mustOpen(t, f.path, now)
}

// sameLeases fails t unless got holds exactly want, in any order. Leases
// are compared field by field, times with Equal.
func sameLeases(t testing.TB, got, want []gateway.Lease) {
	t.Helper()
	sortLeases(got)
	want = slices.Clone(want)
	sortLeases(want)
	if len(got) != len(want) {
		t.Fatalf("got %d leases; want %d", len(got), len(want))
	}
	for i := range got {
		if !equalLease(got[i], want[i]) {
			t.Errorf("lease %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func sortLeases(ls []gateway.Lease) {
	slices.SortFunc(ls, func(a, b gateway.Lease) int {
		return int(leaseKey(&a)) - int(leaseKey(&b))
	})
}

func equalLease(a, b gateway.Lease) bool {
	return a.Protocol == b.Protocol && a.Internal == b.Internal && a.ExternalPort == b.ExternalPort &&
		a.Nonce == b.Nonce && slices.Equal(a.Filters, b.Filters) && a.Origin == b.Origin &&
		a.Pinhole == b.Pinhole && a.PinholeID == b.PinholeID &&
		a.Description == b.Description && a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

// fileBytes returns the content of path.
func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile writes b as the state file at path, making its directory.
func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// countingFile counts the writes and syncs that reach the file, and can be
// made to fail them.
type countingFile struct {
	logFile
	writes, syncs int
	failWrite     bool // write half the bytes, then fail, once
	failSync      bool // fail the next sync
	syncBroken    bool // fail every sync
}

func (c *countingFile) Write(b []byte) (int, error) {
	c.writes++
	if c.failWrite {
		c.failWrite = false
		n, _ := c.logFile.Write(b[:len(b)/2])
		return n, fmt.Errorf("injected write failure")
	}
	return c.logFile.Write(b)
}

func (c *countingFile) Sync() error {
	c.syncs++
	if c.failSync || c.syncBroken {
		c.failSync = false
		return fmt.Errorf("injected sync failure")
	}
	return c.logFile.Sync()
}

// compactNow compacts f at once, in the caller's goroutine.
func compactNow(t testing.TB, f *File) {
	t.Helper()
	f.mu.Lock()
	c, ok := f.startCompaction(true)
	f.mu.Unlock()
	if !ok {
		t.Fatal("compaction did not start")
	}
	if _, err := f.compact(c, tempName(f.path)); err != nil {
		t.Fatalf("compact: %v", err)
	}
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
