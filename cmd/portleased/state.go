package main

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/statefile"
)

// durableState is the daemon's state file ("state file PATH"), or nothing
// ("state file none": leases, epoch and BOOTID live in memory only).
type durableState struct {
	file   *statefile.File // nil for none
	loaded statefile.Loaded
	log    *slog.Logger

	mu   sync.Mutex
	meta statefile.Meta
}

// openState opens the state file of cfg and reads what a previous run kept.
// A damaged file loses only its damaged records (statefile.Open logs them);
// one that cannot be created or written stops the start.
func openState(path string, log *slog.Logger) (*durableState, error) {
	s := &durableState{log: log}
	if path == "" {
		log.Info("no state file: leases are lost when portleased stops")
		return s, nil
	}
	f, loaded, err := statefile.Open(path, time.Now(), log)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	s.file, s.loaded, s.meta = f, loaded, loaded.Meta
	return s, nil
}

// journal returns the state file as the table's journal, or nil.
func (s *durableState) journal() gateway.Journal {
	if s.file == nil {
		return nil
	}
	return s.file
}

// epochStart returns the epoch to continue: the one kept, or zero (a new
// epoch) when the state was lost or is not kept. A damaged file may have
// lost mappings that clients were granted, so it starts a new epoch too:
// "if the NAT gateway ... loses state, it MUST reset its epoch" (RFC 6886
// §3.6), and clients then ask again for what they hold.
func (s *durableState) epochStart() time.Time {
	if s.file == nil || !s.loaded.Existed {
		return time.Time{}
	}
	if len(s.loaded.Damage) > 0 {
		s.log.Warn("state file damaged: a new epoch starts, so that clients map again", "damaged", len(s.loaded.Damage))
		return time.Time{}
	}
	return s.loaded.Meta.EpochStart
}

// firstBootID returns the BOOTID.UPNP.ORG of this start: greater than the
// last one kept, even on a router whose clock restarts at 1970 (UDA 2.0
// §1.2.2), and the clock's seconds when those are greater still.
func (s *durableState) firstBootID(now time.Time) int {
	id := int(now.Unix() & 0x7fffffff)
	if prev := int(s.loaded.Meta.BootID); prev >= id {
		id = (prev + 1) & 0x7fffffff
	}
	return id
}

// setEpoch records the epoch in force; setBootID a BOOTID advertised.
func (s *durableState) setEpoch(start time.Time) {
	s.update(func(m *statefile.Meta) { m.EpochStart = start })
}

func (s *durableState) setBootID(id int) {
	// The latest, not the greatest: after BOOTID wraps at 2^31 the next
	// start goes on from the wrapped value.
	s.update(func(m *statefile.Meta) { m.BootID = uint32(id) })
}

func (s *durableState) update(edit func(*statefile.Meta)) {
	if s.file == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(&s.meta)
	if err := s.file.SetMeta(s.meta); err != nil {
		s.log.Error("state file: epoch and BOOTID not kept", "err", err)
	}
}

// restore puts the kept leases back into table and makes the kernel agree
// with it: what the kernel still holds of them is adopted, what it lacks
// added, the rest removed. A kernel that refuses is tried again by the
// table's Run loop.
func (s *durableState) restore(table *gateway.Table) {
	n, skipped := table.Restore(s.loaded.Leases)
	counts, err := table.Resync()
	attrs := []any{"restored", n, "left_out", len(skipped),
		"kernel_adopted", counts.Adopted, "kernel_added", counts.Added, "kernel_removed", counts.Removed}
	if err != nil {
		s.log.Error("kernel not reconciled with the lease table; retrying", append(attrs, "err", err)...)
		return
	}
	if s.file != nil {
		attrs = append(attrs, "damaged", len(s.loaded.Damage))
	}
	s.log.Info("leases restored", attrs...)
}

// close closes the state file.
func (s *durableState) close() {
	if s.file == nil {
		return
	}
	if err := s.file.Close(); err != nil {
		s.log.Error("state file not closed", "err", err)
	}
}
