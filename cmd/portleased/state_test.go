package main

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/statefile"
)

// TestEpochContinues: the epoch kept goes on when the state file was read
// whole, and starts anew when the file is missing or damaged, since a
// damaged file may have lost granted mappings (RFC 6886 §3.6).
func TestEpochContinues(t *testing.T) {
	epoch := time.Now().Add(-time.Hour).Round(0).Truncate(time.Second)
	lease := gateway.Lease{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort("198.51.100.10:80"), ExternalPort: 8080,
		Origin: gateway.OriginNATPMP, Created: time.Now().Round(0), Expires: time.Now().Add(time.Hour).Round(0)}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		kept   bool
	}{
		{"intact", func(*testing.T, string) {}, true},
		{"missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"last record cut short", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()-3); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "leases")
			f, _, err := statefile.Open(path, time.Now(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.SetMeta(statefile.Meta{EpochStart: epoch, BootID: 7}); err != nil {
				t.Fatal(err)
			}
			if err := f.Commit([]gateway.Lease{lease}, nil); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path)
			s, err := openState(path, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			got := s.epochStart()
			switch {
			case tt.kept && !got.Equal(epoch):
				t.Fatalf("epochStart() = %v; want the kept %v", got, epoch)
			case !tt.kept && !got.IsZero():
				t.Fatalf("epochStart() = %v; want zero, a new epoch", got)
			}
		})
	}
}
