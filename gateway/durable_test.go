package gateway

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// cancelAwareFirewall fails an Apply whose context is done, as the nftables
// backend does, and holds its first Apply until released.
type cancelAwareFirewall struct {
	*gatedFirewall
}

func (f cancelAwareFirewall) Apply(ctx context.Context, add, remove []Mapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.gatedFirewall.Apply(ctx, add, remove)
}

// TestBatchSurvivesACancelledRequest: the request that leads a batch is
// cancelled (a UPnP client hung up); the other requests of its batch are
// granted all the same.
func TestBatchSurvivesACancelledRequest(t *testing.T) {
	gated := &gatedFirewall{recordingFirewall: newRecordingFirewall(), entered: make(chan struct{}), release: make(chan struct{})}
	fw := cancelAwareFirewall{gated}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw})
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := tab.Map(context.Background(), mapReq(TCP, client1, 1500, 1500)); err != nil {
			t.Error(err)
		}
	})
	<-gated.entered
	// The first queued request leads the next batch.
	cancelled, cancel := context.WithCancel(context.Background())
	wg.Go(func() { _, _ = tab.Map(cancelled, mapReq(UDP, client2, 2000, 0)) })
	waitQueued(t, tab, 1)
	const others = 5
	errs := make([]error, others)
	for i := range others {
		wg.Go(func() {
			_, errs[i] = tab.Map(context.Background(), mapReq(UDP, client2, uint16(2001+i), 0))
		})
	}
	waitQueued(t, tab, 1+others)
	cancel()
	close(gated.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d of the batch failed with its leader's cancellation: %v", i, err)
		}
	}
	if tab.Len() != fw.len() {
		t.Fatalf("table holds %d leases, firewall %d", tab.Len(), fw.len())
	}
}

// TestFailedRemovalIsRetried: a removal the kernel refuses leaves the table
// at once, and Run brings the kernel to agree.
func TestFailedRemovalIsRetried(t *testing.T) {
	tab, fw := newTestTable(t, defaultPolicy())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := tab.Map(ctx, mapReq(TCP, client1, 8080, 8080)); err != nil {
		t.Fatal(err)
	}
	refusals := 2
	fw.fail = func(add, remove []Mapping) error {
		if refusals > 0 && (len(remove) > 0 || len(add) == 0) {
			refusals--
			return errors.New("netlink: busy")
		}
		return nil
	}
	if _, err := tab.Delete(ctx, TCP, netip.AddrPortFrom(client1, 8080)); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.has(TCP, 8080); !ok {
		t.Fatal("the refused removal took effect; the test proves nothing")
	}
	if tab.Len() != 0 {
		t.Fatal("the table still holds the deleted lease")
	}
	done := make(chan error)
	go func() { done <- tab.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := fw.has(TCP, 8080); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the kernel still holds the deleted mapping")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

// recordingJournal keeps what the table committed, as a state file would.
type recordingJournal struct {
	mu       sync.Mutex
	leases   map[journalKey]Lease
	commits  int
	replaces int
	fail     error
	// refuse, when set, may fail a Commit by what it carries.
	refuse func(put, drop []Lease) error
}

func (j *recordingJournal) Commit(put, drop []Lease) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	if j.refuse != nil {
		if err := j.refuse(put, drop); err != nil {
			return err
		}
	}
	if j.leases == nil {
		j.leases = make(map[journalKey]Lease)
	}
	j.commits++
	for _, l := range drop {
		delete(j.leases, journalKeyOf(&l))
	}
	for _, l := range put {
		j.leases[journalKeyOf(&l)] = l
	}
	return nil
}

func (j *recordingJournal) Replace(leases []Lease) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	j.leases = make(map[journalKey]Lease, len(leases))
	for _, l := range leases {
		j.leases[journalKeyOf(&l)] = l
	}
	j.replaces++
	return nil
}

func (j *recordingJournal) keys() []mappingKey {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []mappingKey
	for _, l := range j.leases {
		out = append(out, mappingKey{l.Protocol, l.ExternalPort})
	}
	slices.SortFunc(out, func(a, b mappingKey) int { return int(a.port) - int(b.port) })
	return out
}

// TestJournalFollowsTheTable: grants, renewals and deletions reach the
// journal; a grant the kernel refused does not.
func TestJournalFollowsTheTable(t *testing.T) {
	fw := newRecordingFirewall()
	j := &recordingJournal{}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw, Journal: j})
	ctx := context.Background()
	req := mapReq(TCP, client1, 8080, 8080)
	req.Description = "web"
	if _, err := tab.Map(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Map(ctx, mapReq(UDP, client1, 9000, 9000)); err != nil {
		t.Fatal(err)
	}
	req.Lifetime = 2 * time.Hour
	if _, err := tab.Map(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := j.leases[journalKey{proto: TCP, n: 8080}]; got.Description != "web" || got.Expires.Sub(got.Created) < 2*time.Hour-time.Second {
		t.Fatalf("journal holds %+v after the renewal; want the renewed lease", got)
	}
	if _, err := tab.Delete(ctx, UDP, netip.AddrPortFrom(client1, 9000)); err != nil {
		t.Fatal(err)
	}
	fw.fail = func(add, remove []Mapping) error { return errors.New("netlink: refused") }
	if _, err := tab.Map(ctx, mapReq(TCP, client2, 7000, 7000)); err == nil {
		t.Fatal("grant succeeded with a failing firewall")
	}
	if got, want := j.keys(), []mappingKey{{TCP, 8080}}; !slices.Equal(got, want) {
		t.Fatalf("journal holds %v; want %v", got, want)
	}
}

// TestJournalFailureFailsTheRequest: a grant that cannot be made durable is
// refused and taken back.
func TestJournalFailureFailsTheRequest(t *testing.T) {
	fw := newRecordingFirewall()
	j := &recordingJournal{fail: errors.New("disk full")}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw, Journal: j})
	if _, err := tab.Map(context.Background(), mapReq(TCP, client1, 8080, 8080)); !errors.Is(err, ErrJournal) {
		t.Fatalf("Map with a failing journal = %v; want ErrJournal", err)
	}
	if tab.Len() != 0 {
		t.Fatalf("table holds %d leases after a grant the journal refused", tab.Len())
	}
	if _, ok := fw.has(TCP, 8080); ok {
		t.Fatal("the kernel still forwards a grant that the table took back")
	}
}

// TestRestoreAndResync: leases of a previous run come back with their
// ports, descriptions and ends; ended ones and ones the policy no longer
// allows stay out and leave the journal; Resync puts the rest in the kernel.
func TestRestoreAndResync(t *testing.T) {
	now := time.Now()
	fw := newRecordingFirewall()
	fw.held[kernelKey{proto: UDP, port: 1234}] = Mapping{Protocol: UDP, ExternalPort: 1234, Internal: netip.MustParseAddrPort("198.51.100.99:1234")}
	j := &recordingJournal{}
	epoch := now.Add(-time.Hour).Round(0)
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw, Journal: j, EpochStart: epoch})
	if got := tab.Epoch(); got < 3599 || got > 3601 {
		t.Fatalf("Epoch() = %d; want about 3600, continued", got)
	}
	live := Lease{Protocol: TCP, Internal: netip.MustParseAddrPort("198.51.100.10:8000"), ExternalPort: 8080, Origin: OriginUPnP,
		Description: "web", Created: now.Add(-time.Minute).Round(0), Expires: now.Add(time.Hour).Round(0)}
	permanent := Lease{Protocol: UDP, Internal: netip.MustParseAddrPort("198.51.100.11:5000"), ExternalPort: 5000, Origin: OriginUPnP,
		Created: now.Add(-48 * time.Hour).Round(0)}
	ended := Lease{Protocol: UDP, Internal: netip.MustParseAddrPort("198.51.100.10:53"), ExternalPort: 5353, Origin: OriginNATPMP,
		Created: now.Add(-2 * time.Hour).Round(0), Expires: now.Add(-time.Second).Round(0)}
	foreign := Lease{Protocol: TCP, Internal: netip.MustParseAddrPort("10.9.9.9:22"), ExternalPort: 2222, Origin: OriginNATPMP,
		Created: now.Round(0), Expires: now.Add(time.Hour).Round(0)}
	if err := j.Commit([]Lease{live, permanent, ended, foreign}, nil); err != nil {
		t.Fatal(err)
	}
	restored, skipped := tab.Restore([]Lease{live, permanent, ended, foreign})
	if restored != 2 || len(skipped) != 2 {
		t.Fatalf("Restore = %d restored, %d skipped; want 2 and 2", restored, len(skipped))
	}
	got, ok := tab.LookupExternal(TCP, 8080)
	if !ok || got.Description != "web" || !got.Expires.Equal(live.Expires) || !got.Created.Equal(live.Created) {
		t.Fatalf("restored lease %+v; want %+v", got, live)
	}
	counts, err := tab.Resync()
	if err != nil {
		t.Fatal(err)
	}
	if counts != (Reconciled{Added: 2, Removed: 1}) {
		t.Fatalf("Resync = %+v; want 2 added, the orphan removed", counts)
	}
	m, ok := fw.has(UDP, 5000)
	if !ok || m.Lifetime <= DefaultKernelTimeout/2 || m.Lifetime > DefaultKernelTimeout {
		t.Fatalf("permanent lease in the kernel: %+v, %v; want a timeout bounded by %v, above half of it", m, ok, DefaultKernelTimeout)
	}
	if got, want := j.keys(), []mappingKey{{UDP, 5000}, {TCP, 8080}}; !slices.Equal(got, want) {
		t.Fatalf("journal holds %v after Resync; want %v", got, want)
	}
	if got := tab.EpochStart(); !got.Equal(epoch) {
		t.Fatalf("EpochStart() = %v; want %v", got, epoch)
	}
}

// TestKernelTimeoutRearmed: a permanent lease gets a kernel timeout within
// the bound and above half of it, armed again when that half has passed
// while the lease lasts; a lease within the bound keeps its own end.
func TestKernelTimeoutRearmed(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	fw := newRecordingFirewall()
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw, Now: now, KernelTimeout: time.Hour})
	ctx := context.Background()
	perm := mapReq(TCP, client1, 8000, 8080)
	perm.Permanent, perm.Origin = true, OriginUPnP
	if _, err := tab.Map(ctx, perm); err != nil {
		t.Fatal(err)
	}
	short := mapReq(UDP, client1, 5300, 5353)
	short.Lifetime = 10 * time.Minute
	if _, err := tab.Map(ctx, short); err != nil {
		t.Fatal(err)
	}
	bounded := func(what string) {
		t.Helper()
		if m, ok := fw.has(TCP, 8080); !ok || m.Lifetime <= 30*time.Minute || m.Lifetime > time.Hour {
			t.Fatalf("%s the permanent lease's kernel lifetime is %v (held %v); want within (30m, 1h]", what, m.Lifetime, ok)
		}
	}
	bounded("at the grant")
	if m, _ := fw.has(UDP, 5353); m.Lifetime != 10*time.Minute {
		t.Fatalf("short lease's kernel lifetime %v; want its own 10m", m.Lifetime)
	}
	applies := fw.applies
	mu.Lock()
	clock = clock.Add(31 * time.Minute)
	mu.Unlock()
	tab.expire()
	if fw.applies == applies {
		t.Fatal("after 31 minutes the permanent lease was not armed again")
	}
	bounded("after 31 minutes")
	if _, ok := fw.has(UDP, 5353); ok || tab.Len() != 1 {
		t.Fatal("the short lease outlived its end")
	}
}

// TestKernelTimeoutSurvivesRestart: a restart within the kernel timeout's
// slot wants the very end the kernel element already has, so that the
// start-up reconciliation keeps the element as it is rather than replace
// it.
func TestKernelTimeoutSurvivesRestart(t *testing.T) {
	start := time.Now().Round(0)
	fw := newRecordingFirewall()
	first := New(Config{Policy: defaultPolicy(), Firewall: fw, Now: func() time.Time { return start }})
	perm := mapReq(TCP, client1, 8000, 8080)
	perm.Permanent, perm.Origin = true, OriginUPnP
	res, err := first.Map(context.Background(), perm)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := fw.has(TCP, 8080)
	end := start.Add(m.Lifetime)
	// Half the bound before the end, the lease is armed again: restart
	// halfway to that.
	restart := start.Add(end.Add(-DefaultKernelTimeout/2).Sub(start) / 2)
	second := New(Config{Policy: defaultPolicy(), Firewall: fw, Now: func() time.Time { return restart }})
	if n, _ := second.Restore([]Lease{res.Lease}); n != 1 {
		t.Fatal("the lease did not come back")
	}
	if _, err := second.Resync(); err != nil {
		t.Fatal(err)
	}
	m, _ = fw.has(TCP, 8080)
	if got := restart.Add(m.Lifetime); !got.Equal(end) {
		t.Fatalf("after the restart the kernel timeout ends at %v; want %v, the end armed before", got, end)
	}
}

// TestJournalCatchesUp: a deletion the journal failed to record is written
// by the resync that Run makes next, so that a restart does not bring the
// deleted lease back.
func TestJournalCatchesUp(t *testing.T) {
	fw := newRecordingFirewall()
	j := &recordingJournal{}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw, Journal: j})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, port := range []uint16{8080, 9000} {
		if _, err := tab.Map(ctx, mapReq(TCP, client1, port, port)); err != nil {
			t.Fatal(err)
		}
	}
	j.mu.Lock()
	j.fail = errors.New("disk full")
	j.mu.Unlock()
	if _, err := tab.Delete(ctx, TCP, netip.AddrPortFrom(client1, 9000)); err != nil {
		t.Fatal(err)
	}
	if got := j.keys(); len(got) != 2 {
		t.Fatalf("journal holds %v; the failed write should have left both", got)
	}
	j.mu.Lock()
	j.fail = nil
	j.mu.Unlock()
	done := make(chan error)
	go func() { done <- tab.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Equal(j.keys(), []mappingKey{{TCP, 8080}}) {
		if time.Now().After(deadline) {
			t.Fatalf("journal holds %v; want only the lease left", j.keys())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}
