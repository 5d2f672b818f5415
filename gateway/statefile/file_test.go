package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portlease/portlease/gateway"
)

func TestOpenMissing(t *testing.T) {
	path := statePath(t)
	f, ld := mustOpen(t, path, t0)
	if ld.Existed || len(ld.Leases) != 0 || len(ld.Damage) != 0 || ld.Meta != (Meta{}) {
		t.Errorf("Open of a missing file = %+v; want nothing", ld)
	}
	for _, p := range []string{filepath.Dir(path), path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(fileMode)
		if fi.IsDir() {
			want = os.ModeDir | dirMode
		}
		if fi.Mode() != want {
			t.Errorf("mode of %s = %v; want %v", p, fi.Mode(), want)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ld := mustOpen(t, path, t0); !ld.Existed || len(ld.Damage) != 0 {
		t.Errorf("Open of a fresh file = %+v; want existed, undamaged", ld)
	}
}

func TestOpenEmpty(t *testing.T) {
	path := statePath(t)
	writeFile(t, path, nil)
	_, ld := mustOpen(t, path, t0)
	if !ld.Existed || len(ld.Leases) != 0 || len(ld.Damage) != 0 {
		t.Errorf("Open of an empty file = %+v; want existed, nothing lost", ld)
	}
}

func TestOpenUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	writeFile(t, blocker, []byte("x"))
	path := filepath.Join(blocker, "leases")
	_, _, err := Open(path, t0, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Open(%s) under a regular file = %v; want an error naming the path", path, err)
	}
}

func TestRoundTrip(t *testing.T) {
	path := statePath(t)
	f, _ := mustOpen(t, path, t0)
	want := testLeases(1, 8)
	// An IPv4-mapped IPv6 internal address stays mapped; a lease with a
	// zero creation time keeps it.
	want = append(want, gateway.Lease{
		Protocol:     gateway.UDP,
		Internal:     netipMust("[::ffff:198.51.100.7]:9"),
		ExternalPort: 100,
		Origin:       gateway.OriginUPnP,
	})
	if err := f.Commit(want, nil); err != nil {
		t.Fatal(err)
	}
	meta := Meta{EpochStart: t0.Add(-time.Minute), BootID: 7}
	if err := f.SetMeta(meta); err != nil {
		t.Fatal(err)
	}
	_, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, want)
	if !ld.Meta.EpochStart.Equal(meta.EpochStart) || ld.Meta.BootID != meta.BootID {
		t.Errorf("Meta = %+v; want %+v", ld.Meta, meta)
	}
	if !ld.Existed || len(ld.Damage) != 0 {
		t.Errorf("Existed, Damage = %v, %v; want true, none", ld.Existed, ld.Damage)
	}
}

func TestReplaceAndRemove(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	a, b, c := testLease(8), testLease(9), testLease(10)
	if err := f.Commit([]gateway.Lease{a, b, c}, nil); err != nil {
		t.Fatal(err)
	}
	a2 := a
	a2.Internal = netipMust("198.51.100.99:1")
	a2.Expires = a.Expires.Add(time.Hour)
	if err := f.Commit([]gateway.Lease{a2}, []gateway.Lease{{Protocol: b.Protocol, ExternalPort: b.ExternalPort}}); err != nil {
		t.Fatal(err)
	}
	// Put and remove of one key in one batch: removed.
	if err := f.Commit([]gateway.Lease{c}, []gateway.Lease{c}); err != nil {
		t.Fatal(err)
	}
	_, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, []gateway.Lease{a2})
}

func TestExpiredDropped(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	short, long, permanent := testLease(4), testLease(8), testLease(6)
	short.Expires = t0.Add(time.Minute)
	long.Expires = t0.Add(time.Hour)
	if !permanent.Expires.IsZero() {
		t.Fatal("testLease(6) is not permanent")
	}
	if err := f.Commit([]gateway.Lease{short, long, permanent}, nil); err != nil {
		t.Fatal(err)
	}
	f, ld := reopen(t, f, t0.Add(time.Minute)) // short ends exactly now
	sameLeases(t, ld.Leases, []gateway.Lease{long, permanent})
	// The rewrite dropped it: opened earlier again, it is still gone.
	_, ld = reopen(t, f, t0)
	sameLeases(t, ld.Leases, []gateway.Lease{long, permanent})
}

func TestDescriptionCut(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	l := testLease(2)
	l.Description = strings.Repeat("端", 600) // 1800 bytes
	if err := f.Commit([]gateway.Lease{l}, nil); err != nil {
		t.Fatal(err)
	}
	_, ld := reopen(t, f, t0)
	if len(ld.Leases) != 1 {
		t.Fatalf("got %d leases; want 1", len(ld.Leases))
	}
	d := ld.Leases[0].Description
	if len(d) != 1023 || !utf8.ValidString(d) || !strings.HasPrefix(l.Description, d) {
		t.Errorf("description of %d bytes came back as %d bytes (valid UTF-8 %v); want the first 341 characters, 1023 bytes",
			len(l.Description), len(d), utf8.ValidString(d))
	}
}

func TestCommitOneWriteOneSync(t *testing.T) {
	for _, n := range []int{1, 100, 1000} {
		f, _ := mustOpen(t, statePath(t), t0)
		cf := &countingFile{logFile: f.f}
		f.f = cf
		before := f.size
		put := testLeases(1, n)
		remove := testLeases(5000, n/10)
		if err := f.Commit(put, remove); err != nil {
			t.Fatal(err)
		}
		if cf.writes != 1 || cf.syncs != 1 {
			t.Errorf("Commit of %d puts and %d removes: %d writes, %d syncs; want 1, 1", n, n/10, cf.writes, cf.syncs)
		}
		want := int64(len(remove) * (recHeaderLen + removeLen))
		for _, l := range put {
			want += int64(putSize(&l))
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Size() - before; got != want {
			t.Errorf("Commit of %d puts and %d removes grew the file by %d bytes; want %d", n, n/10, got, want)
		}
		if err := f.Commit(nil, nil); err != nil || cf.writes != 1 {
			t.Errorf("empty Commit = %v with %d writes; want nil, no write", err, cf.writes-1)
		}
	}
}

func TestCommitFailureUndone(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*countingFile)
	}{
		{"write", func(c *countingFile) { c.failWrite = true }},
		{"sync", func(c *countingFile) { c.failSync = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := mustOpen(t, statePath(t), t0)
			good := testLeases(1, 3)
			if err := f.Commit(good, nil); err != nil {
				t.Fatal(err)
			}
			size := f.size
			cf := &countingFile{logFile: f.f}
			f.f = cf
			tc.set(cf)
			err := f.Commit(testLeases(10, 50), good[:1])
			if err == nil || !strings.Contains(err.Error(), f.path) {
				t.Fatalf("Commit with a failing %s = %v; want an error naming %s", tc.name, err, f.path)
			}
			fi, serr := os.Stat(f.path)
			if serr != nil {
				t.Fatal(serr)
			}
			if fi.Size() != size {
				t.Errorf("file is %d bytes after the failed commit; want it cut back to %d", fi.Size(), size)
			}
			more := testLease(20)
			if err := f.Commit([]gateway.Lease{more}, nil); err != nil {
				t.Fatalf("Commit after the failure was undone = %v", err)
			}
			_, ld := reopen(t, f, t0)
			sameLeases(t, ld.Leases, append(good, more))
		})
	}
}

// TestSyncBroken: when the file cannot be synced even to cut back a failed
// write, no later Commit claims durability.
func TestSyncBroken(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	good := testLeases(1, 3)
	if err := f.Commit(good, nil); err != nil {
		t.Fatal(err)
	}
	cf := &countingFile{logFile: f.f, syncBroken: true}
	f.f = cf
	if err := f.Commit(testLeases(10, 5), nil); err == nil {
		t.Fatal("Commit with a broken sync = nil; want an error")
	}
	cf.syncBroken = false
	if err := f.Commit(testLeases(20, 5), nil); err == nil || !strings.Contains(err.Error(), f.path) {
		t.Errorf("Commit after a failure that could not be undone = %v; want an error naming the path", err)
	}
	_, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, good)
}

func TestCloseTwice(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	if err := f.Close(); err != nil {
		t.Fatalf("first Close() = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if err := f.Commit(testLeases(1, 1), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close = %v; want ErrClosed", err)
	}
	if err := f.SetMeta(Meta{BootID: 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetMeta after Close = %v; want ErrClosed", err)
	}
}

func TestConcurrentCommit(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	f.slack = 4 << 10 // compactions in the background meanwhile
	const writers, rounds = 8, 60
	var wg sync.WaitGroup
	final := make([][]gateway.Lease, writers)
	for w := range writers {
		wg.Go(func() {
			base := w * 100
			for r := range rounds {
				put := testLeases(base+r%10, 5)
				for i := range put {
					put[i].Expires = t0.Add(time.Duration(r+1) * time.Hour)
				}
				remove := testLeases(base+r%10+5, 2)
				if err := f.Commit(put, remove); err != nil {
					t.Error(err)
					return
				}
				if err := f.SetMeta(Meta{BootID: uint32(r)}); err != nil {
					t.Error(err)
					return
				}
			}
			// What the writer's keys end as: replay its rounds.
			state := map[uint16]gateway.Lease{}
			for r := range rounds {
				for _, l := range testLeases(base+r%10, 5) {
					l.Expires = t0.Add(time.Duration(r+1) * time.Hour)
					state[l.ExternalPort] = l
				}
				for _, l := range testLeases(base+r%10+5, 2) {
					delete(state, l.ExternalPort)
				}
			}
			for _, l := range state {
				final[w] = append(final[w], l)
			}
		})
	}
	wg.Wait()
	var want []gateway.Lease
	for _, ls := range final {
		want = append(want, ls...)
	}
	_, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, want)
	if ld.Meta.BootID != rounds-1 {
		t.Errorf("BootID = %d; want %d", ld.Meta.BootID, rounds-1)
	}
}

// TestReplace: Replace leaves exactly the leases given and the meta last
// recorded, and makes a File that a failed write left broken usable again.
func TestReplace(t *testing.T) {
	f, _ := mustOpen(t, statePath(t), t0)
	meta := Meta{EpochStart: t0.Add(-time.Hour), BootID: 7}
	if err := f.SetMeta(meta); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(testLeases(1, 5), nil); err != nil {
		t.Fatal(err)
	}
	cf := &countingFile{logFile: f.f, syncBroken: true}
	f.f = cf
	if err := f.Commit(testLeases(10, 5), nil); err == nil {
		t.Fatal("Commit with a broken sync = nil; want an error")
	}
	want := testLeases(3, 4)
	if err := f.Replace(want); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(testLeases(20, 1), nil); err != nil {
		t.Fatalf("Commit after Replace = %v; want the File usable again", err)
	}
	_, ld := reopen(t, f, t0)
	sameLeases(t, ld.Leases, append(want, testLeases(20, 1)...))
	if !ld.Meta.EpochStart.Equal(meta.EpochStart) || ld.Meta.BootID != meta.BootID {
		t.Errorf("meta after Replace = %+v; want %+v", ld.Meta, meta)
	}
}
