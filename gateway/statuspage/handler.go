// Package statuspage is portleased's status page for the LAN: one HTML page
// with its CSS and JavaScript, embedded in the binary, that shows the lease
// table (with filters by host, protocol, origin and text), each host's
// leases against its share, the external address and its history, the
// last events, the epoch and the daemon's uptime, and follows every change
// of the table without a reload.
//
// The page first fetches a JSON snapshot (SnapshotPath), then follows a
// stream of server-sent events (EventsPath; HTML Living Standard §9.2), each
// message a whole new snapshot: one on every change of the table (Table.Watch),
// bursts coalesced, and one when new events or another external address
// show up. The streams are bounded (Config.MaxStreams).
//
// The page is read-only unless Config.Admin: then it offers to delete a
// lease, a pinhole or all of a host's leases, by a POST to DeletePath that
// carries Config.Token in the TokenHeader header (the page asks for the
// token once and keeps it in the tab's sessionStorage). Without Admin, or
// without the right token, a POST is refused with 403 Forbidden. A custom
// header and a JSON body cannot be sent across sites without a CORS
// preflight, which the handler never grants; the Content-Security-Policy
// keeps the page out of frames.
//
// The handler serves the paths under Path and is meant to be mounted on
// the UPnP HTTP server (package upnpsrv, Config.StatusPage), which listens
// only on LAN addresses, checks the Host header against DNS rebinding and
// bounds the connections of each host before a request gets here.
package statuspage

import (
	"crypto/sha256"
	"embed"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portlease/portlease/internal/defaults"
)

// The paths the handler serves.
const (
	Path         = "/status"
	StylePath    = Path + "/style.css"
	ScriptPath   = Path + "/app.js"
	SnapshotPath = Path + "/leases.json"
	EventsPath   = Path + "/events"
	DeletePath   = Path + "/delete"
)

// TokenHeader is the request header that carries the admin token.
const TokenHeader = "X-Portlease-Token"

// Defaults of Config.
const (
	DefaultMaxStreams  = 16
	DefaultCoalesce    = 100 * time.Millisecond
	DefaultRefresh     = 500 * time.Millisecond
	DefaultKeepAlive   = 20 * time.Second
	DefaultStreamWrite = 10 * time.Second
)

// maxEvents is how many of the latest events a snapshot carries.
const maxEvents = 50

//go:embed assets
var assets embed.FS

// Config configures a Handler. Table is required.
type Config struct {
	// Table is the lease core. Required.
	Table Table
	// Logger receives the admin actions at info level and refused ones at
	// debug level. Nil discards.
	Logger *slog.Logger
	// Started is when the daemon started, for its uptime. Zero: when New
	// was called.
	Started time.Time
	// Admin offers the deletions, which must carry Token ("status page
	// admin on").
	Admin bool
	// Token is what TokenHeader must hold ("status page token").
	// Required with Admin.
	Token string
	// MaxStreams bounds the event streams served at once, a host's to a
	// quarter of it (at least one); one more is
	// answered 503 Service Unavailable (the page retries). Default 16.
	MaxStreams int
	// Coalesce is how long a stream waits after a change for more before
	// it sends a snapshot, and the least time between two snapshots.
	// Default 100 ms.
	Coalesce time.Duration
	// Refresh is how often a stream looks for what Watch does not report:
	// new events (renewals, refused requests) and another external
	// address. Default 500 ms, so that they too show within a second; a
	// look costs a sequence number's comparison under the table's lock.
	Refresh time.Duration
	// KeepAlive is how long a stream stays silent before it sends a
	// comment, which keeps proxies and NAT state from closing it. Default
	// 20 s.
	KeepAlive time.Duration
	// StreamWrite bounds each write of an event stream: a page that stops
	// reading (its socket's buffers full) loses its stream, and frees its
	// place among MaxStreams, instead of holding it forever. Default 10 s.
	StreamWrite time.Duration
}

// Handler serves the status page. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	token   [sha256.Size]byte
	streams chan struct{} // one per event stream served
	// mu guards hostStreams: the event streams of each host, at most a
	// quarter of MaxStreams.
	mu          sync.Mutex
	hostStreams map[netip.Addr]int
	// snapMu guards the snapshot every stream shares (sharedSnapshot):
	// its JSON, what it shows and when it was built.
	snapMu      sync.Mutex
	snapBody    []byte
	snapSeen    seenState
	snapAt      time.Time
	snapChanges uint64
	// changes counts the streams' Watch calls: a change of the table.
	changes atomic.Uint64
	index   []byte
	style   []byte
	script  []byte
}

// New checks cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Table == nil {
		return nil, errors.New("statuspage: no lease table")
	}
	if cfg.Admin && cfg.Token == "" {
		return nil, errors.New("statuspage: admin actions need a token")
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	defaults.Positive(&cfg.MaxStreams, DefaultMaxStreams)
	defaults.Positive(&cfg.Coalesce, DefaultCoalesce)
	defaults.Positive(&cfg.Refresh, DefaultRefresh)
	defaults.Positive(&cfg.KeepAlive, DefaultKeepAlive)
	defaults.Positive(&cfg.StreamWrite, DefaultStreamWrite)
	h := &Handler{
		cfg:     cfg,
		log:     cfg.Logger,
		token:   sha256.Sum256([]byte(cfg.Token)),
		streams: make(chan struct{}, cfg.MaxStreams),

		hostStreams: make(map[netip.Addr]int),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for name, dst := range map[string]*[]byte{"index.html": &h.index, "style.css": &h.style, "app.js": &h.script} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			return nil, err // not reached: the files are embedded
		}
		*dst = b
	}
	return h, nil
}

// ServeHTTP serves the page, its style and script, the snapshot, the event
// stream and the deletions; any other path is 404 Not Found.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	// The page loads only its own style and script, talks only to its
	// own origin, and is never framed (a delete button under another
	// site's page).
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case Path:
		h.serveAsset(w, r, "text/html; charset=utf-8", h.index)
	case StylePath:
		h.serveAsset(w, r, "text/css; charset=utf-8", h.style)
	case ScriptPath:
		h.serveAsset(w, r, "text/javascript; charset=utf-8", h.script)
	case SnapshotPath:
		if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.serveSnapshot(w, r)
	case EventsPath:
		if !allowMethods(w, r, http.MethodGet) {
			return
		}
		h.serveEvents(w, r)
	case DeletePath:
		if !allowMethods(w, r, http.MethodPost) {
			return
		}
		h.serveDelete(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// allowMethods answers 405 Method Not Allowed unless r's method is one of
// methods, and reports whether it is.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	allow := methods[0]
	for _, m := range methods[1:] {
		allow += ", " + m
	}
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}
