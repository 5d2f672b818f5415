package statuspage

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"time"
)

// retryMillis is the reconnection time a stream asks of the page (HTML
// Living Standard §9.2.6, "retry").
const retryMillis = 3000

// serveEvents answers GET of EventsPath with a stream of server-sent events
// (text/event-stream, HTML Living Standard §9.2): a "snapshot" event,
// whose data is the snapshot's JSON on one line, at once and after every
// change of the table, the changes of a burst coalesced; a comment line
// when the stream has been silent for Config.KeepAlive. The stream ends
// when the client goes away or the request's context ends (the server
// shuts down).
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	host := hostOf(r.RemoteAddr)
	if !h.takeHostStream(host) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many event streams from this host", http.StatusServiceUnavailable)
		return
	}
	defer h.releaseHostStream(host)
	select {
	case h.streams <- struct{}{}:
		defer func() { <-h.streams }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many event streams", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	// The server's read and write timeouts bound a request, not a
	// stream that lasts as long as the page is open: the read deadline
	// is lifted, and each write gets its own (Config.StreamWrite). A
	// server that cannot change them ends the stream early, and the page
	// reconnects.
	_ = rc.SetReadDeadline(time.Time{})
	writeBy := func() { _ = rc.SetWriteDeadline(time.Now().Add(h.cfg.StreamWrite)) }
	writeBy()

	changed := make(chan struct{}, 1)
	stop := h.cfg.Table.Watch(func() {
		h.changes.Add(1)
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	defer stop()

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", retryMillis); err != nil {
		return
	}

	ctx := r.Context()
	refresh := time.NewTicker(h.cfg.Refresh)
	defer refresh.Stop()
	coalesce := time.NewTimer(0) // fires at once: the first snapshot
	defer coalesce.Stop()
	pending := true
	var seen seenState
	lastWrite := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			if !pending {
				pending = true
				coalesce.Reset(h.cfg.Coalesce)
			}
			continue
		case <-refresh.C:
			switch {
			case pending:
				continue
			case seen.stale(h.cfg.Table):
				pending = true
				coalesce.Reset(0)
				continue
			case time.Since(lastWrite) < h.cfg.KeepAlive:
				continue
			}
			writeBy()
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-coalesce.C:
			body, sent, err := h.sharedSnapshot()
			if err != nil {
				h.log.Error("status page: snapshot", "err", err)
				return
			}
			seen = sent
			writeBy()
			if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", body); err != nil {
				h.log.Debug("status page: event stream ended", "client", r.RemoteAddr, "err", err)
				return
			}
			pending = false
		}
		if err := rc.Flush(); err != nil {
			return
		}
		lastWrite = time.Now()
	}
}

// sharedSnapshot returns a snapshot's JSON, one line (json.Marshal escapes
// every newline inside strings, as one "data:" field needs), and what it
// shows. Every stream sends the same one, built once while the table
// shows nothing new (no Watch call since, nor a new event, external
// address or epoch) and for at most a second (the snapshot's Now, which
// the lifetimes count from): 16 pages open on a table of 65,536 leases
// cost one encoding a change, not 16. Changes counts the Watch calls
// before the snapshot is read, so that one during its making makes the
// next call build anew.
func (h *Handler) sharedSnapshot() ([]byte, seenState, error) {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	changes := h.changes.Load()
	if h.snapBody != nil && changes == h.snapChanges && time.Since(h.snapAt) < time.Second && !h.snapSeen.stale(h.cfg.Table) {
		return h.snapBody, h.snapSeen, nil
	}
	s := h.snapshot()
	body, err := json.Marshal(s)
	if err != nil {
		return nil, seenState{}, fmt.Errorf("encode snapshot: %w", err)
	}
	h.snapBody, h.snapSeen, h.snapAt, h.snapChanges = body, seenOf(s), time.Now(), changes
	return body, h.snapSeen, nil
}

// seenState is what a stream sent last of what Watch does not report.
type seenState struct {
	newest     uint64 // the Seq of the newest event
	external   string
	epochStart time.Time
}

func seenOf(s snapshot) seenState {
	return seenState{newest: s.newest, external: s.External, epochStart: s.EpochStart}
}

// stale reports whether t shows anything the stream has not sent.
func (s seenState) stale(t Table) bool {
	_, newest := t.Events(s.newest)
	return newest != s.newest || addrString(t.ExternalAddress()) != s.external || !t.EpochStart().Equal(s.epochStart)
}

// hostOf returns the address of a request's RemoteAddr, or the zero Addr
// (one share for every unknown) when it does not parse.
func hostOf(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// takeHostStream counts a stream of host against its share of MaxStreams
// (a quarter, at least one), so that one LAN host cannot take every
// stream; false when the host holds its share already.
func (h *Handler) takeHostStream(host netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hostStreams[host] >= max(1, h.cfg.MaxStreams/4) {
		return false
	}
	h.hostStreams[host]++
	return true
}

// releaseHostStream gives back a stream of host.
func (h *Handler) releaseHostStream(host netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hostStreams[host]--; h.hostStreams[host] <= 0 {
		delete(h.hostStreams, host)
	}
}
