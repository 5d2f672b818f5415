package statefile

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// validFile returns the bytes of a state file with a meta record, puts of
// every kind of lease and a remove.
func validFile() []byte {
	b := appendHeader(nil)
	b = appendMeta(b, Meta{EpochStart: t0.Add(-time.Hour), BootID: 9})
	leases := testLeases(1, 6)
	for i := range leases {
		b = appendPut(b, &leases[i])
	}
	return appendRemove(b, &leases[2])
}

// FuzzOpen: Open never panics on any file, and whatever it loads, committed
// again and reopened, loads the same.
func FuzzOpen(f *testing.F) {
	valid := validFile()
	f.Add(valid)
	f.Add(valid[:len(valid)-5])
	f.Add(appendHeader(nil))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "leases")
		if err := os.WriteFile(path, b, fileMode); err != nil {
			t.Fatal(err)
		}
		sf, first, err := Open(path, t0, nil)
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		if err := sf.Commit(first.Leases, nil); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		if err := sf.Close(); err != nil {
			t.Fatal(err)
		}
		sf, again, err := Open(path, t0, nil)
		if err != nil {
			t.Fatalf("reopen = %v", err)
		}
		sf.Close()
		sameLeases(t, again.Leases, first.Leases)
		if !again.Meta.EpochStart.Equal(first.Meta.EpochStart) || again.Meta.BootID != first.Meta.BootID {
			t.Errorf("Meta reopened = %+v; want %+v", again.Meta, first.Meta)
		}
		if len(again.Damage) != 0 {
			t.Errorf("reopened: damage %+v; want none", again.Damage)
		}
	})
}
