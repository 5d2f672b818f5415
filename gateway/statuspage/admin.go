package statuspage

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"

	"github.com/portlease/portlease/gateway"
)

// maxDeleteBody bounds the body of a deletion.
const maxDeleteBody = 1 << 10

// deleteRequest is the JSON body of a POST to DeletePath: one of
//
//	{"what": "lease", "proto": "tcp", "externalPort": 8080}   an IPv4 lease
//	{"what": "pinhole", "pinholeId": 3}                       an IPv6 pinhole
//	{"what": "host", "host": "198.51.100.2"}                  every lease of a host
type deleteRequest struct {
	What         string `json:"what"`
	Proto        string `json:"proto"`
	ExternalPort uint16 `json:"externalPort"`
	PinholeID    uint16 `json:"pinholeId"`
	Host         string `json:"host"`
}

// deleteResponse answers a deletion that was carried out.
type deleteResponse struct {
	Deleted int `json:"deleted"`
}

// errBadDelete is a deletion request that names nothing to delete.
var errBadDelete = errors.New("statuspage: bad deletion request")

// serveDelete answers POST of DeletePath: 403 Forbidden without
// Config.Admin or without the token, 400 for a body that is not a
// deleteRequest, 404 when nothing matched, and 200 with a deleteResponse.
func (h *Handler) serveDelete(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.Admin {
		h.log.Debug("status page: refused deletion: admin actions are off", "client", r.RemoteAddr)
		http.Error(w, "admin actions are off", http.StatusForbidden)
		return
	}
	given := sha256.Sum256([]byte(r.Header.Get(TokenHeader)))
	if subtle.ConstantTimeCompare(given[:], h.token[:]) != 1 {
		h.log.Debug("status page: refused deletion: wrong token", "client", r.RemoteAddr)
		http.Error(w, "wrong token", http.StatusForbidden)
		return
	}
	// A JSON body, unlike a form's, cannot come from another site
	// without a CORS preflight.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "want Content-Type application/json", http.StatusUnsupportedMediaType)
		return
	}
	var req deleteRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxDeleteBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	deleted, err := h.delete(r, req)
	switch {
	case errors.Is(err, errBadDelete):
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case errors.Is(err, gateway.ErrNotFound) || err == nil && len(deleted) == 0:
		http.Error(w, "no such lease", http.StatusNotFound)
		return
	case err != nil:
		h.log.Error("status page: deletion failed", "client", r.RemoteAddr, "what", req.What, "err", err)
		http.Error(w, "deletion failed", http.StatusInternalServerError)
		return
	}
	for _, l := range deleted {
		h.log.Info("status page: operator deleted lease", "client", r.RemoteAddr, "proto", l.Protocol,
			"internal", l.Internal, "eport", l.ExternalPort, "pinhole", l.Pinhole, "origin", l.Origin)
	}
	body, _ := json.Marshal(deleteResponse{Deleted: len(deleted)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// delete carries out req.
func (h *Handler) delete(r *http.Request, req deleteRequest) ([]gateway.Lease, error) {
	t, ctx := h.cfg.Table, r.Context()
	switch req.What {
	case "lease":
		p, ok := protocolOf(req.Proto)
		if !ok || req.ExternalPort == 0 {
			return nil, fmt.Errorf("%w: lease %q port %d", errBadDelete, req.Proto, req.ExternalPort)
		}
		l, err := t.DeleteByOperator(ctx, p, req.ExternalPort)
		if err != nil {
			return nil, err
		}
		return []gateway.Lease{l}, nil
	case "pinhole":
		if req.PinholeID == 0 {
			return nil, fmt.Errorf("%w: pinhole 0", errBadDelete)
		}
		l, err := t.DeletePinholeByOperator(ctx, req.PinholeID)
		if err != nil {
			return nil, err
		}
		return []gateway.Lease{l}, nil
	case "host":
		a, err := netip.ParseAddr(req.Host)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%w: host %q", errBadDelete, req.Host)
		}
		return t.DeleteHost(ctx, a), nil
	}
	return nil, fmt.Errorf("%w: what %q (want lease, pinhole or host)", errBadDelete, req.What)
}

func protocolOf(s string) (gateway.Protocol, bool) {
	switch s {
	case "tcp":
		return gateway.TCP, true
	case "udp":
		return gateway.UDP, true
	}
	return 0, false
}
