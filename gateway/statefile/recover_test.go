package statefile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/portlease/portlease/gateway"
)

// fiveRecords returns the bytes of a state file holding five put records,
// the leases and where each record starts (and, last, where the file
// ends).
func fiveRecords(t *testing.T) ([]byte, []gateway.Lease, []int) {
	t.Helper()
	f, _ := mustOpen(t, statePath(t), t0)
	leases := testLeases(1, 5)
	for i := range leases {
		if err := f.Commit(leases[i:i+1], nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b := fileBytes(t, f.path)
	starts := []int{headerLen}
	for _, l := range leases {
		starts = append(starts, starts[len(starts)-1]+len(appendPut(nil, &l)))
	}
	if starts[5] != len(b) {
		t.Fatalf("file of %d bytes; want %d", len(b), starts[5])
	}
	return b, leases, starts
}

// loadBytes reads the file bytes b as Open does, without the disk (the
// loops below read thousands of files; TestOpenDamaged goes through Open).
func loadBytes(t *testing.T, b []byte) Loaded {
	t.Helper()
	img := replay(b)
	leases, _ := img.live(t0)
	return Loaded{Leases: leases, Damage: img.damage, Existed: true}
}

// TestOpenDamaged: Open keeps the good records of a damaged file, logs the
// damage with its offset, and rewrites the file without it.
func TestOpenDamaged(t *testing.T) {
	b, leases, starts := fiveRecords(t)
	b[starts[2]+recHeaderLen+offPutEPort] ^= 0x10 // the third record
	b = b[:len(b)-3]                              // and the fifth, torn
	path := statePath(t)
	writeFile(t, path, b)
	var logged bytes.Buffer
	f, ld, err := Open(path, t0, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	sameLeases(t, ld.Leases, []gateway.Lease{leases[0], leases[1], leases[3]})
	for _, off := range []int{starts[2], starts[4]} {
		if want := fmt.Sprintf("level=WARN msg=\"state file damaged: records lost\" path=%s offset=%d ", path, off); !strings.Contains(logged.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logged.String())
		}
	}
	_, ld = reopen(t, f, t0)
	if len(ld.Damage) != 0 {
		t.Errorf("reopened after the rewrite: damage %+v; want none", ld.Damage)
	}
	sameLeases(t, ld.Leases, []gateway.Lease{leases[0], leases[1], leases[3]})
}

// recordAt returns the index of the record of starts holding offset pos.
func recordAt(starts []int, pos int) int {
	for i := 0; i+1 < len(starts); i++ {
		if pos >= starts[i] && pos < starts[i+1] {
			return i
		}
	}
	return -1
}

func TestTruncated(t *testing.T) {
	b, leases, starts := fiveRecords(t)
	for n := 0; n <= len(b); n++ {
		ld := loadBytes(t, b[:n])
		whole := 0 // the records wholly within the first n bytes
		for whole < 5 && starts[whole+1] <= n {
			whole++
		}
		sameLeases(t, ld.Leases, leases[:whole])
		cut := n > 0 && n < headerLen || n >= headerLen && n != starts[whole]
		if cut != (len(ld.Damage) == 1) || len(ld.Damage) > 1 {
			t.Fatalf("cut at %d: damage %+v; want one stretch only when a record or the header is cut", n, ld.Damage)
		}
		if cut && n >= headerLen && (ld.Damage[0].Offset != int64(starts[whole]) || ld.Damage[0].Length != int64(n-starts[whole])) {
			t.Errorf("cut at %d: damage %+v; want offset %d length %d", n, ld.Damage[0], starts[whole], n-starts[whole])
		}
	}
}

func TestFlippedByte(t *testing.T) {
	b, leases, starts := fiveRecords(t)
	for pos := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := append([]byte(nil), b...)
			c[pos] ^= mask
			ld := loadBytes(t, c)
			if pos < headerLen {
				if len(ld.Leases) != 0 || len(ld.Damage) != 1 {
					t.Fatalf("header byte %d ^ %#x: %d leases, damage %+v; want none, the whole file", pos, mask, len(ld.Leases), ld.Damage)
				}
				continue
			}
			hit := recordAt(starts, pos)
			want := append(append([]gateway.Lease(nil), leases[:hit]...), leases[hit+1:]...)
			sameLeases(t, ld.Leases, want)
			if len(ld.Damage) != 1 || ld.Damage[0].Offset != int64(starts[hit]) {
				t.Fatalf("byte %d ^ %#x: damage %+v; want one stretch at offset %d", pos, mask, ld.Damage, starts[hit])
			}
		}
	}
}

// TestImplausibleLengthResync: a length field made huge or tiny loses that
// record alone; reading resumes at the next record that validates.
func TestImplausibleLengthResync(t *testing.T) {
	b, leases, starts := fiveRecords(t)
	for _, n := range []uint32{0, 1, maxPayload + 1, 1 << 31} {
		c := append([]byte(nil), b...)
		binary.BigEndian.PutUint32(c[starts[1]+offRecLen:], n)
		ld := loadBytes(t, c)
		sameLeases(t, ld.Leases, append([]gateway.Lease{leases[0]}, leases[2:]...))
		if len(ld.Damage) != 1 || ld.Damage[0] != (Damage{Offset: int64(starts[1]), Length: int64(starts[2] - starts[1]), Reason: errLength.Error()}) {
			t.Errorf("length %d: damage %+v; want the second record", n, ld.Damage)
		}
	}
}

// TestGarbageBetween: bytes that are no record, between two records, are
// skipped.
func TestGarbageBetween(t *testing.T) {
	b, leases, starts := fiveRecords(t)
	garbage := []byte("not a record at all, but 40 bytes long!!")
	c := append(append(append([]byte(nil), b[:starts[2]]...), garbage...), b[starts[2]:]...)
	ld := loadBytes(t, c)
	sameLeases(t, ld.Leases, leases)
	if len(ld.Damage) != 1 || ld.Damage[0].Offset != int64(starts[2]) || ld.Damage[0].Length != int64(len(garbage)) {
		t.Errorf("damage %+v; want %d bytes at %d", ld.Damage, len(garbage), starts[2])
	}
}

func TestNotOurs(t *testing.T) {
	b, _, _ := fiveRecords(t)
	badVersion := append([]byte(nil), b...)
	binary.BigEndian.PutUint32(badVersion[offVer:], 2)
	for name, c := range map[string][]byte{
		"magic":   append([]byte("#!/bin/sh\n"), b[10:]...),
		"version": badVersion,
		"short":   b[:headerLen-1],
	} {
		t.Run(name, func(t *testing.T) {
			path := statePath(t)
			writeFile(t, path, c)
			f, ld := mustOpen(t, path, t0)
			if !ld.Existed || len(ld.Leases) != 0 || len(ld.Damage) != 1 || ld.Damage[0].Offset != 0 || ld.Damage[0].Length != int64(len(c)) {
				t.Errorf("Open = %+v; want existed, nothing kept, the whole file damaged", ld)
			}
			aside, err := os.ReadFile(path + ".unreadable")
			if err != nil || string(aside) != string(c) {
				t.Errorf("the unreadable file was not kept aside: %v", err)
			}
			// A fresh file replaced it.
			if err := f.Commit(testLeases(1, 1), nil); err != nil {
				t.Fatal(err)
			}
			_, ld = reopen(t, f, t0)
			if len(ld.Leases) != 1 || len(ld.Damage) != 0 {
				t.Errorf("reopened: %+v; want the one lease, no damage", ld)
			}
		})
	}
}
