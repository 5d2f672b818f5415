package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Server serves the control API on a Unix socket. Table is required; the
// other fields have working zero values.
type Server struct {
	Table Table
	// Access decides which peers may use the API; its zero value admits
	// root and the members of group 0.
	Access Access
	// Metrics, if set, is served at /metrics (the Prometheus text
	// format, gateway/metrics).
	Metrics http.Handler
	// Logger receives the refused peers and the deletions; nil: discard.
	Logger *slog.Logger
	// Now is the clock of the remaining lifetimes; nil: time.Now.
	Now func() time.Time

	once     sync.Once
	srv      *http.Server
	refusals *refusalLog
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		s.refusals = newRefusalLog(s.Logger, s.Now)
		s.srv = &http.Server{
			Handler:           s.admit(s.Handler()),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
			ConnContext:       withPeer,
		}
	})
}

// Serve answers the connections of ln until Shutdown or Close; it returns
// http.ErrServerClosed then. Each connection's peer is checked against
// Access (see admit).
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	return s.srv.Serve(ln)
}

// Shutdown stops accepting connections and waits for the requests in
// progress, or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	return s.srv.Shutdown(ctx)
}

// Close stops the server at once. It is safe to call twice.
func (s *Server) Close() error {
	s.init()
	return s.srv.Close()
}

// peerKey carries a connection's peer credentials in its context.
type peerKey struct{}

// peerOf is what withPeer found of a connection's peer.
type peerOf struct {
	cred Cred
	err  error
}

func withPeer(ctx context.Context, c net.Conn) context.Context {
	cred, err := PeerCred(c)
	return context.WithValue(ctx, peerKey{}, peerOf{cred, err})
}

// admit answers 403 to a peer that Access does not admit, or whose
// credentials cannot be read, closes its connection, and logs it (at most
// once a minute); the others go on to h.
func (s *Server) admit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(peerOf)
		switch {
		case !ok:
			p.err = errors.New("control: no peer credentials")
		case p.err == nil && !s.Access.Admits(p.cred):
			p.err = fmt.Errorf("control: %s is not root, the daemon's user (uid %d) nor a member of its group (gid %d)", p.cred, s.Access.UID, s.Access.GID)
		}
		if p.err != nil {
			s.refusals.refused(p.cred, p.err)
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusForbidden, p.err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Handler returns the API's handler, without the check of the peer (for
// tests and for mounting behind another check).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"/leases", s.list)
	mux.HandleFunc("GET "+prefix+"/leases/{protocol}/{port}", s.getLease)
	mux.HandleFunc("DELETE "+prefix+"/leases/{protocol}/{port}", s.deleteLease)
	mux.HandleFunc("GET "+prefix+"/pinholes/{id}", s.getPinhole)
	mux.HandleFunc("DELETE "+prefix+"/pinholes/{id}", s.deletePinhole)
	mux.HandleFunc("DELETE "+prefix+"/hosts/{addr}/leases", s.deleteHost)
	mux.HandleFunc("GET "+prefix+"/counters", s.counters)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	return muxErrors(mux)
}

// now returns the server's clock, set up by init when serving; a bare
// Handler in a test uses time.Now unless Now is set.
func (s *Server) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q, err := ParseQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	all := s.Table.Leases()
	slices.SortFunc(all, gateway.CompareLeases)
	counts, limit, now := usage(all), s.Table.Policy().MaxPerHost, s.now()
	out := Leases{Version: Version, ExternalAddress: s.Table.ExternalAddress(), Leases: []Lease{}}
	for _, l := range all {
		if q.match(l) {
			out.Leases = append(out.Leases, leaseOf(l, now, counts[l.Internal.Addr().Unmap()], limit))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// one converts l for a response, counting its host's leases.
func (s *Server) one(l gateway.Lease) Lease {
	host := l.Internal.Addr().Unmap()
	n := 0
	for _, x := range s.Table.Leases() {
		if x.Internal.Addr().Unmap() == host {
			n++
		}
	}
	return leaseOf(l, s.now(), n, s.Table.Policy().MaxPerHost)
}

// key reads the {protocol} and {port} of r's path.
func key(r *http.Request) (gateway.Protocol, uint16, error) {
	p, err := ParseProtocol(r.PathValue("protocol"))
	if err != nil {
		return 0, 0, err
	}
	port, err := ParsePort(r.PathValue("port"))
	return p, port, err
}

func (s *Server) getLease(w http.ResponseWriter, r *http.Request) {
	p, port, err := key(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	l, ok := s.Table.LookupExternal(p, port)
	if !ok {
		writeError(w, http.StatusNotFound, noLease(p, port))
		return
	}
	writeJSON(w, http.StatusOK, One{Version: Version, ExternalAddress: s.Table.ExternalAddress(), Lease: s.one(l)})
}

func (s *Server) deleteLease(w http.ResponseWriter, r *http.Request) {
	p, port, err := key(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	l, err := s.Table.DeleteByOperator(r.Context(), p, port)
	switch {
	case errors.Is(err, gateway.ErrNotFound):
		writeError(w, http.StatusNotFound, noLease(p, port))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, fmt.Errorf("control: delete %s %d: %w", p, port, err))
		return
	}
	s.logger().Info("lease deleted by the operator", "proto", p.String(), "eport", port, "internal", l.Internal, "origin", l.Origin.String())
	writeJSON(w, http.StatusOK, Deleted{Version: Version, Deleted: []Lease{leaseOf(l, s.now(), 0, s.Table.Policy().MaxPerHost)}})
}

func noLease(p gateway.Protocol, port uint16) error {
	return fmt.Errorf("control: no %s lease on external port %d", p, port)
}

func (s *Server) getPinhole(w http.ResponseWriter, r *http.Request) {
	id, err := ParsePinholeID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	l, ok := s.Table.Pinhole(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("control: no pinhole of id %d", id))
		return
	}
	writeJSON(w, http.StatusOK, One{Version: Version, ExternalAddress: s.Table.ExternalAddress(), Lease: s.one(l)})
}

func (s *Server) deletePinhole(w http.ResponseWriter, r *http.Request) {
	id, err := ParsePinholeID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	l, err := s.Table.DeletePinholeByOperator(r.Context(), id)
	switch {
	case errors.Is(err, gateway.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("control: no pinhole of id %d", id))
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, fmt.Errorf("control: delete pinhole %d: %w", id, err))
		return
	}
	s.logger().Info("pinhole deleted by the operator", "id", id, "proto", l.Protocol.String(), "internal", l.Internal, "origin", l.Origin.String())
	writeJSON(w, http.StatusOK, Deleted{Version: Version, Deleted: []Lease{leaseOf(l, s.now(), 0, s.Table.Policy().MaxPerHost)}})
}

func (s *Server) deleteHost(w http.ResponseWriter, r *http.Request) {
	host, err := ParseHost(r.PathValue("addr"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out := Deleted{Version: Version, Deleted: []Lease{}}
	now, limit := s.now(), s.Table.Policy().MaxPerHost
	deleted := s.Table.DeleteHost(r.Context(), host)
	slices.SortFunc(deleted, gateway.CompareLeases)
	for _, l := range deleted {
		out.Deleted = append(out.Deleted, leaseOf(l, now, 0, limit))
	}
	s.logger().Info("host's leases deleted by the operator", "host", host, "leases", len(out.Deleted))
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) counters(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, countersOf(s.Table.Counters()))
}

// muxErrors rewrites the mux's own plain-text 404 and 405 as JSON Errors.
func muxErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&errorRewriter{ResponseWriter: w, method: r.Method, path: r.URL.Path}, r)
	})
}

// errorRewriter turns a 404 or 405 written by the mux (in plain text,
// where the handlers write JSON) into an Error.
type errorRewriter struct {
	http.ResponseWriter
	method, path string
	swallow      bool
}

func (e *errorRewriter) WriteHeader(code int) {
	if e.swallow || !strings.HasPrefix(e.Header().Get("Content-Type"), "text/plain") {
		e.ResponseWriter.WriteHeader(code)
		return
	}
	switch code {
	case http.StatusMethodNotAllowed:
		e.swallow = true
		writeError(e.ResponseWriter, code, fmt.Errorf("control: %s does not take %s (allowed: %s)", e.path, e.method, e.Header().Get("Allow")))
		return
	case http.StatusNotFound:
		e.swallow = true
		writeError(e.ResponseWriter, code, fmt.Errorf("control: no such path %q (this daemon serves API version %d under %s/)", e.path, Version, prefix))
		return
	}
	e.ResponseWriter.WriteHeader(code)
}

func (e *errorRewriter) Write(b []byte) (int, error) {
	if e.swallow {
		return len(b), nil
	}
	return e.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("X-Content-Type-Options")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, Error{Version: Version, Status: status, Message: err.Error()})
}
