package statefile

import (
	"os"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// checkIndex fails t unless every entry of f's index points at an intact
// put record of its key, and the meta location at a meta record.
func checkIndex(t *testing.T, f *File) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	b := fileBytes(t, f.path)
	if int64(len(b)) != f.size {
		t.Fatalf("file of %d bytes; File says %d", len(b), f.size)
	}
	sum := int64(headerLen)
	for k, l := range f.live {
		r, size, err := parseRecord(b[l.offset():])
		if err != nil || size != l.size() || (r.typ != recPut && r.typ != recPutExt) || r.key != k {
			t.Fatalf("index of %v/%d: record at %d: %v, %d bytes, type %d key %v", k.protocol(), k.port(), l.offset(), err, size, r.typ, r.key)
		}
		sum += int64(size)
	}
	if f.meta != 0 {
		r, size, err := parseRecord(b[f.meta.offset():])
		if err != nil || size != f.meta.size() || r.typ != recMeta {
			t.Fatalf("meta at %d: %v, type %d", f.meta.offset(), err, r.typ)
		}
		sum += int64(size)
	}
	if sum != f.liveBytes {
		t.Errorf("liveBytes = %d; the live records take %d", f.liveBytes, sum)
	}
}

// renewAll commits each lease again rounds times, a second later each time
// (a permanent one unchanged),
// and returns them as last committed.
func renewAll(t *testing.T, f *File, leases []gateway.Lease, rounds int) []gateway.Lease {
	t.Helper()
	for range rounds {
		for i := range leases {
			if !leases[i].Expires.IsZero() {
				leases[i].Expires = leases[i].Expires.Add(time.Second)
			}
		}
		if err := f.Commit(leases, nil); err != nil {
			t.Fatal(err)
		}
	}
	return leases
}

func TestCompactionKeepsLiveSet(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	leases := renewAll(t, f, testLeases(1, 200), 20)
	if err := f.Commit(nil, leases[100:]); err != nil {
		t.Fatal(err)
	}
	if err := f.SetMeta(Meta{EpochStart: t0, BootID: 3}); err != nil {
		t.Fatal(err)
	}
	live := leases[:100]
	before := f.size
	compactNow(t, f)
	checkIndex(t, f)
	want := int64(headerLen + len(appendMeta(nil, Meta{})))
	for _, l := range live {
		want += int64(len(appendPut(nil, &l)))
	}
	fi, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != want || f.size != want {
		t.Errorf("compacted %d bytes to %d (File says %d); want %d", before, fi.Size(), f.size, want)
	}
	// It goes on appending to the compacted file.
	more := testLease(500)
	if err := f.Commit([]gateway.Lease{more}, live[:1]); err != nil {
		t.Fatal(err)
	}
	checkIndex(t, f)
	_, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, append(live[1:], more))
	if ld.Meta.BootID != 3 || !ld.Meta.EpochStart.Equal(t0) {
		t.Errorf("Meta = %+v; want boot 3, epoch at %v", ld.Meta, t0)
	}
}

// TestCompactionTail: what is committed while a compaction copies the
// live records (the tail) is in the compacted file and in its index.
func TestCompactionTail(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	leases := renewAll(t, f, testLeases(1, 50), 5)
	if err := f.SetMeta(Meta{BootID: 1}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	c, ok := f.startCompaction(true)
	f.mu.Unlock()
	if !ok {
		t.Fatal("compaction did not start")
	}
	// Commits between the start and the snapshot: a renewal, a removal,
	// a new lease, new meta.
	leases[0].Expires = leases[0].Expires.Add(time.Hour)
	added := testLease(300)
	if err := f.Commit([]gateway.Lease{leases[0], added}, leases[1:2]); err != nil {
		t.Fatal(err)
	}
	if err := f.SetMeta(Meta{BootID: 2}); err != nil {
		t.Fatal(err)
	}
	// And while the temporary is being written.
	newFile := f.newFile
	f.newFile = func(name string) (logFile, error) {
		if err := f.Commit(nil, leases[2:3]); err != nil {
			t.Error(err)
		}
		return newFile(name)
	}
	if _, err := f.compact(c, tempName(f.path)); err != nil {
		t.Fatal(err)
	}
	f.newFile = newFile
	checkIndex(t, f)
	want := append(append([]gateway.Lease{leases[0]}, leases[3:]...), added)
	f, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, want)
	if ld.Meta.BootID != 2 {
		t.Errorf("BootID = %d; want 2", ld.Meta.BootID)
	}
	checkIndex(t, f)
}

// TestCompactionBounded: the file stays within twice its live records and
// the slack (plus the last batch) while leases are renewed over and over,
// compacted in the background.
func TestCompactionBounded(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	f.slack = 16 << 10
	leases := testLeases(1, 100)
	batch := int64(0)
	for _, l := range leases {
		batch += int64(len(appendPut(nil, &l)))
	}
	for range 200 {
		leases = renewAll(t, f, leases, 1)
		f.wg.Wait() // let a compaction started by that commit end
		if s := f.sizeNow(); s > 2*f.liveBytes+f.slack+batch {
			t.Fatalf("file of %d bytes with %d live: not compacted", s, f.liveBytes)
		}
	}
	checkIndex(t, f)
	_, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, leases)
}

// TestCompactionClosed: Close during a background compaction waits for it,
// which gives up, and leaves a file that reads back whole.
func TestCompactionClosed(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	leases := renewAll(t, f, testLeases(1, 100), 10)
	inside, proceed := make(chan struct{}), make(chan struct{})
	newFile := f.newFile
	f.newFile = func(name string) (logFile, error) {
		close(inside)
		<-proceed
		return newFile(name)
	}
	f.mu.Lock()
	f.slack = 0
	f.maybeCompact()
	f.mu.Unlock()
	<-inside
	closed := make(chan error)
	go func() { closed <- f.Close() }()
	for !func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.closed }() {
		time.Sleep(time.Millisecond)
	}
	close(proceed)
	if err := <-closed; err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := os.Stat(tempName(f.path)); !os.IsNotExist(err) {
		t.Errorf("the abandoned temporary is still there: %v", err)
	}
	_, ld := mustOpen(t, f.path, t0)
	sameLeases(t, ld.Leases, leases)
}
