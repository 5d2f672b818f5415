package statuspage

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// stream is a client's event stream.
type stream struct {
	resp   *http.Response
	cancel context.CancelFunc
	snaps  chan snapshot
}

// openStream opens EventsPath of the server at url and reads its
// snapshots in the background until the test ends.
func openStream(t *testing.T, url string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+EventsPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET %s: %s, %q", EventsPath, resp.Status, resp.Header.Get("Content-Type"))
	}
	s := &stream{resp: resp, cancel: cancel, snaps: make(chan snapshot, 100)}
	go func() {
		defer close(s.snaps)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var kind string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && kind == "snapshot":
				var snap snapshot
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &snap); err != nil {
					t.Errorf("snapshot event: %v", err)
					return
				}
				s.snaps <- snap
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next snapshot; the test fails after 10 s without one.
func (s *stream) next(t *testing.T) snapshot {
	t.Helper()
	select {
	case snap, ok := <-s.snaps:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return snap
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10 s")
	}
	panic("not reached")
}

// TestEventStream: a stream sends a snapshot at once, and one after a
// change of the table; a burst of changes comes as fewer snapshots; the
// stream stops watching the table when the client goes away.
func TestEventStream(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newHandler(t, Config{Table: f, Coalesce: 50 * time.Millisecond}))
	t.Cleanup(srv.Close) // after the streams' cleanup
	s := openStream(t, srv.URL)
	if snap := s.next(t); len(snap.Leases) != 0 {
		t.Fatalf("first snapshot %+v", snap)
	}
	f.add(leaseTCP)
	if snap := s.next(t); len(snap.Leases) != 1 || snap.Leases[0].ExternalPort != 8080 {
		t.Fatalf("snapshot after a grant: %+v", snap.Leases)
	}
	const burst = 50
	for i := range burst {
		l := leaseTCP
		l.ExternalPort = uint16(10000 + i)
		f.add(l)
	}
	n := 0
	for snap := s.next(t); ; snap = s.next(t) {
		n++
		if len(snap.Leases) == burst+1 {
			break
		}
	}
	if n >= burst {
		t.Errorf("%d changes came as %d snapshots", burst, n)
	}
	s.close()
	deadline := time.Now().Add(10 * time.Second)
	for f.watching() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream still watches the table after its client went away")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventStreamRefresh: what Watch does not report (a refused request's
// event, another external address) reaches the stream too.
func TestEventStreamRefresh(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newHandler(t, Config{Table: f, Refresh: 20 * time.Millisecond}))
	t.Cleanup(srv.Close) // after the streams' cleanup
	s := openStream(t, srv.URL)
	s.next(t)
	f.mu.Lock()
	f.events = append(f.events, gateway.Event{Seq: 1, Time: time.Now(), Kind: gateway.EventRefused, Lease: leaseTCP, Reason: "not allowed"})
	f.mu.Unlock()
	if snap := s.next(t); len(snap.Events) != 1 || snap.Events[0].Reason != "not allowed" {
		t.Fatalf("snapshot after a refusal: %+v", snap.Events)
	}
	f.mu.Lock()
	f.external = leaseTCP.Internal.Addr()
	f.mu.Unlock()
	if snap := s.next(t); snap.External != "198.51.100.2" {
		t.Fatalf("snapshot after a new external address: %q", snap.External)
	}
}

// TestEventStreamsBounded: a stream beyond MaxStreams is refused with 503
// and Retry-After; once one ends, another is served.
func TestEventStreamsBounded(t *testing.T) {
	srv := httptest.NewServer(newHandler(t, Config{Table: newFake(), MaxStreams: 1}))
	t.Cleanup(srv.Close) // after the streams' cleanup
	first := openStream(t, srv.URL)
	first.next(t)
	resp, err := http.Get(srv.URL + EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a second stream: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	first.close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(srv.URL + EventsPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first stream ended: %s", resp.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventStreamsShareSnapshots: streams open at once get one snapshot
// built for all of them, the first and the one after a change.
func TestEventStreamsShareSnapshots(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(newHandler(t, Config{Table: f, MaxStreams: 16, Coalesce: 50 * time.Millisecond}))
	t.Cleanup(srv.Close)
	var streams []*stream
	for range 3 {
		s := openStream(t, srv.URL)
		s.next(t)
		streams = append(streams, s)
	}
	f.add(leaseTCP)
	for _, s := range streams {
		if snap := s.next(t); len(snap.Leases) != 1 {
			t.Fatalf("snapshot after a grant: %+v", snap.Leases)
		}
	}
	f.mu.Lock()
	reads := f.reads
	f.mu.Unlock()
	// 2 when the streams open within the snapshot's second; 6 if each
	// stream built its own.
	if reads >= 6 {
		t.Errorf("the table's leases were read %d times for 3 streams' 2 snapshots each; want them shared", reads)
	}
}

// TestEventStreamsPerHost: one host gets a quarter of MaxStreams; the
// next of its streams is refused with 503 while places remain for others.
func TestEventStreamsPerHost(t *testing.T) {
	h := newHandler(t, Config{Table: newFake(), MaxStreams: 8})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for range 2 {
		openStream(t, srv.URL).next(t)
	}
	resp, err := http.Get(srv.URL + EventsPath)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		resp.Body.Close() // a stream: its body never ends
		t.Fatal("a third stream of one host was served")
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "from this host") {
		t.Fatalf("a third stream of one host: %s %q", resp.Status, body)
	}
	if n := len(h.streams); n != 2 {
		t.Errorf("%d places among MaxStreams taken; want 2 (the refused one takes none)", n)
	}
}

// TestEventStreamOutlivesTimeouts: a stream lasts beyond the server's read
// and write timeouts (the UPnP server's bound a request).
func TestEventStreamOutlivesTimeouts(t *testing.T) {
	f := newFake()
	srv := httptest.NewUnstartedServer(newHandler(t, Config{Table: f}))
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close) // after the streams' cleanup
	s := openStream(t, srv.URL)
	s.next(t)
	time.Sleep(300 * time.Millisecond)
	f.add(leaseTCP)
	if snap := s.next(t); len(snap.Leases) != 1 {
		t.Fatalf("snapshot after the timeouts: %+v", snap.Leases)
	}
}
