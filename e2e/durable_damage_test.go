package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// The state file's layout (gateway/statefile/doc.go): a 12-byte header,
// then records of a 4-byte payload length, a 4-byte CRC-32C, a type byte
// and the payload.
const (
	stateHeaderLen    = 12
	stateRecHeaderLen = 9
	stateRecPut       = 1
)

// stateRecord is where one record lies in the state file.
type stateRecord struct {
	offset, size int
	typ          byte
}

// stateRecords splits a state file into its records; the test fails if the
// file does not split cleanly.
func stateRecords(t *testing.T, b []byte) []stateRecord {
	t.Helper()
	if len(b) < stateHeaderLen || string(b[:8]) != "PLLEASES" {
		t.Fatalf("the state file has no header: % x", b[:min(len(b), stateHeaderLen)])
	}
	var recs []stateRecord
	for off := stateHeaderLen; off < len(b); {
		if len(b)-off < stateRecHeaderLen {
			t.Fatalf("the state file ends in a record header at offset %d", off)
		}
		size := stateRecHeaderLen + int(binary.BigEndian.Uint32(b[off:]))
		if off+size > len(b) {
			t.Fatalf("the record at offset %d runs past the end", off)
		}
		recs = append(recs, stateRecord{offset: off, size: size, typ: b[off+8]})
		off += size
	}
	return recs
}

// TestDamagedStateFile: three leases, a stop, the state file damaged, a
// start. Truncated in the middle of the last lease's record (a torn write)
// or with one byte of the middle lease's record flipped (a bad checksum),
// the daemon starts and serves, the other two leases are back in the table
// and the kernel, the damaged one is not, and the log names the damage at
// the record's offset.
func TestDamagedStateFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		damaged int // which of the three put records
		damage  func(b []byte, r stateRecord) []byte
	}{
		{"truncated", 2, func(b []byte, r stateRecord) []byte { return b[:r.offset+r.size-5] }},
		{"flipped byte", 1, func(b []byte, r stateRecord) []byte {
			b[r.offset+stateRecHeaderLen+r.size/2] ^= 0x10
			return b
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			lab := netlab.New(t, netlab.Config{})
			state := filepath.Join(labpeers.StateDir(t), "leases")
			d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{StateFile: state})
			lan := lab.LAN[0]
			ports := []int{6500, 6501, 6502}
			eports := make([]int, len(ports))
			for i, p := range ports {
				eports[i] = natpmpcMap(t, lab, lan, p, p, "tcp", 3600)
			}
			if err := d.Stop(); err != nil {
				t.Fatal(err)
			}

			b, err := os.ReadFile(state)
			if err != nil {
				t.Fatal(err)
			}
			var puts []stateRecord
			for _, r := range stateRecords(t, b) {
				if r.typ == stateRecPut {
					puts = append(puts, r)
				}
			}
			if len(puts) != len(ports) {
				t.Fatalf("the state file holds %d lease records; want %d", len(puts), len(ports))
			}
			// Which lease a record holds: its external port, at payload
			// offset 4.
			victim := puts[tc.damaged]
			lostPort := int(binary.BigEndian.Uint16(b[victim.offset+stateRecHeaderLen+4:]))
			if tc.name == "truncated" && victim.offset+victim.size != len(b) {
				t.Logf("records follow the last lease's; the truncation drops them too")
			}
			if err := os.WriteFile(state, tc.damage(b, victim), 0o600); err != nil {
				t.Fatal(err)
			}

			if err := d.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			waitLog(t, d, "leases restored")
			if want := fmt.Sprintf("offset=%d ", victim.offset); !strings.Contains(d.Log(), "state file damaged") || !strings.Contains(d.Log(), want) {
				t.Errorf("the log does not name the damage at %s:\n%s", want, d.Log())
			}
			table := readTable(t, lan, d)
			kernelMatchesTable(t, kernelInbound(t, lab), table)
			for i, p := range ports {
				k := mappingKey{"tcp", eports[i]}
				m, ok := table.entries[k]
				switch {
				case eports[i] == lostPort && ok:
					t.Errorf("the damaged lease %v -> %s is back", k, m.Internal)
				case eports[i] != lostPort && (!ok || m.Internal != fmt.Sprintf("%s:%d", lan.Addr4, p)):
					t.Errorf("the good lease %v -> %s:%d is not back:\n%s", k, lan.Addr4, p, table.description)
				}
			}
			if len(table.entries) != len(ports)-1 {
				t.Errorf("the table holds %d mappings; want %d:\n%s", len(table.entries), len(ports)-1, table.description)
			}
			natpmpcMap(t, lab, lan, 6503, 6503, "tcp", 3600)
		})
	}
}
