package gateway

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// journalGate tells when the journal's first Commit has begun.
type journalGate struct {
	*recordingJournal
	committing chan struct{}
	once       sync.Once
}

func (j *journalGate) Commit(put, drop []Lease) error {
	j.once.Do(func() { close(j.committing) })
	return j.recordingJournal.Commit(put, drop)
}

// firewallAwaitingJournal refuses a transaction that the journal's write
// has not joined within a generous deadline.
type firewallAwaitingJournal struct {
	*recordingFirewall
	journal *journalGate
}

func (f firewallAwaitingJournal) Apply(ctx context.Context, add, remove []Mapping) error {
	select {
	case <-f.journal.committing:
	case <-time.After(10 * time.Second):
		return errors.New("the journal's write did not start during the transaction")
	}
	return f.recordingFirewall.Apply(ctx, add, remove)
}

// TestKernelAndJournalAtOnce: a batch's journal write runs while its
// kernel transaction does, so a batch costs the slower of the two.
func TestKernelAndJournalAtOnce(t *testing.T) {
	j := &journalGate{recordingJournal: &recordingJournal{}, committing: make(chan struct{})}
	fw := firewallAwaitingJournal{newRecordingFirewall(), j}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw, Journal: j})
	if _, err := tab.Map(context.Background(), mapReq(TCP, client1, 8080, 8080)); err != nil {
		t.Fatal(err)
	}
	if got, want := j.keys(), []mappingKey{{TCP, 8080}}; !slices.Equal(got, want) {
		t.Fatalf("journal holds %v; want %v", got, want)
	}
}

// batchOfThree makes three grants in one batch (ports 1500, 7000, 7001,
// the last two queued behind the first's transaction) and returns their
// errors.
func batchOfThree(t *testing.T, tab *Table, gated *gatedFirewall) [3]error {
	t.Helper()
	var errs [3]error
	var wg sync.WaitGroup
	wg.Go(func() { _, errs[0] = tab.Map(context.Background(), mapReq(TCP, client1, 1500, 1500)) })
	<-gated.entered
	for i, port := range []uint16{7000, 7001} {
		wg.Go(func() { _, errs[1+i] = tab.Map(context.Background(), mapReq(TCP, client2, port, port)) })
		waitQueued(t, tab, 1+i)
	}
	close(gated.release)
	wg.Wait()
	return errs
}

// refusePort7000 fails every transaction that adds port 7000.
func refusePort7000(add, _ []Mapping) error {
	for _, m := range add {
		if m.ExternalPort == 7000 {
			return errors.New("netlink: refused")
		}
	}
	return nil
}

// TestRefusedGrantLeavesTheJournal: in a batch whose transaction the kernel
// refuses for one grant, the journal (written at the same time) ends with
// the others and without that one, before its request is answered.
func TestRefusedGrantLeavesTheJournal(t *testing.T) {
	gated := &gatedFirewall{recordingFirewall: newRecordingFirewall(), entered: make(chan struct{}), release: make(chan struct{})}
	gated.fail = refusePort7000
	j := &recordingJournal{}
	tab := New(Config{Policy: defaultPolicy(), Firewall: gated, Journal: j})
	errs := batchOfThree(t, tab, gated)
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrFirewall) {
		t.Fatalf("errors %v; want only the grant of 7000 to fail with ErrFirewall", errs)
	}
	if got, want := j.keys(), []mappingKey{{TCP, 1500}, {TCP, 7001}}; !slices.Equal(got, want) {
		t.Fatalf("journal holds %v; want %v", got, want)
	}
	if tab.Len() != 2 || gated.len() != 2 {
		t.Fatalf("table holds %d, kernel %d; want 2 each", tab.Len(), gated.len())
	}
}

// TestKernelAndJournalBothFail: a grant refused by the kernel in a batch
// whose journal write fails too is taken back; the journal, which took
// nothing of the batch, is rewritten from the table by Run's resync.
func TestKernelAndJournalBothFail(t *testing.T) {
	gated := &gatedFirewall{recordingFirewall: newRecordingFirewall(), entered: make(chan struct{}), release: make(chan struct{})}
	gated.fail = refusePort7000
	j := &recordingJournal{fail: errors.New("disk full")}
	tab := New(Config{Policy: defaultPolicy(), Firewall: gated, Journal: j})
	errs := batchOfThree(t, tab, gated)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("request %d succeeded with a failing journal", i)
		}
	}
	if !errors.Is(errs[1], ErrFirewall) || !errors.Is(errs[2], ErrJournal) {
		t.Fatalf("errors %v; want ErrFirewall for 7000, ErrJournal for the others", errs)
	}
	if tab.Len() != 0 || gated.len() != 0 {
		t.Fatalf("table holds %d, kernel %d after every grant failed; want 0", tab.Len(), gated.len())
	}
	j.mu.Lock()
	j.fail = nil
	j.mu.Unlock()
	if _, err := tab.Map(context.Background(), mapReq(UDP, client1, 9000, 9000)); err != nil {
		t.Fatal(err)
	}
	awaitJournal(t, tab, j, []mappingKey{{UDP, 9000}})
}

// TestForgettingARefusedGrantFails: the journal takes a batch whose grant
// the kernel refuses, then fails the write that forgets it; Run's resync
// rewrites the journal without it.
func TestForgettingARefusedGrantFails(t *testing.T) {
	fw := newRecordingFirewall()
	fw.fail = refusePort7000
	var refusing sync.Mutex
	refuse := true
	j := &recordingJournal{refuse: func(put, _ []Lease) error {
		refusing.Lock()
		defer refusing.Unlock()
		if refuse && len(put) == 0 {
			return errors.New("disk full")
		}
		return nil
	}}
	tab := New(Config{Policy: defaultPolicy(), Firewall: fw, Journal: j})
	if _, err := tab.Map(context.Background(), mapReq(TCP, client2, 7000, 7000)); !errors.Is(err, ErrFirewall) {
		t.Fatalf("grant refused by the kernel = %v; want ErrFirewall", err)
	}
	if tab.Len() != 0 || fw.len() != 0 {
		t.Fatalf("table holds %d, kernel %d; want 0", tab.Len(), fw.len())
	}
	refusing.Lock()
	refuse = false
	refusing.Unlock()
	awaitJournal(t, tab, j, nil)
}

// awaitJournal runs tab until its journal, rewritten by a resync, holds
// want, within a generous deadline.
func awaitJournal(t *testing.T, tab *Table, j *recordingJournal, want []mappingKey) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tab.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Equal(j.keys(), want) || j.replaced() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("journal holds %v after %d rewrites; want %v after one", j.keys(), j.replaced(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (j *recordingJournal) replaced() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.replaces
}
