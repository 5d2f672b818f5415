package statuspage

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/portlease/portlease/gateway"
)

// snapshot is what the page shows, as JSON: the page's only data.
type snapshot struct {
	Now        time.Time `json:"now"`
	Started    time.Time `json:"started"`
	Epoch      uint32    `json:"epoch"`
	EpochStart time.Time `json:"epochStart"`
	// External is the external address, "" while there is none.
	External       string          `json:"external"`
	AddressHistory []addressChange `json:"addressHistory"`
	MaxPerHost     int             `json:"maxPerHost"`
	Leases         []lease         `json:"leases"`
	Usage          []hostUsage     `json:"usage"`
	// Events are the latest events, newest last.
	Events []event `json:"events"`
	// Admin tells the page to offer the deletions.
	Admin bool `json:"admin"`
	// newest is the Seq of the table's newest event.
	newest uint64
}

type addressChange struct {
	Time time.Time `json:"time"`
	Addr string    `json:"addr"` // "": the address went away
}

type lease struct {
	Proto        string    `json:"proto"`
	Host         string    `json:"host"`
	InternalPort uint16    `json:"internalPort"`
	ExternalPort uint16    `json:"externalPort"`
	Pinhole      bool      `json:"pinhole"`
	PinholeID    uint16    `json:"pinholeId,omitempty"`
	Origin       string    `json:"origin"`
	Description  string    `json:"description"`
	Nonce        bool      `json:"nonce"` // nonce-protected (PCP, RFC 6887 §11.1)
	Filters      []string  `json:"filters,omitempty"`
	Created      time.Time `json:"created"`
	Expires      time.Time `json:"expires"` // the zero time: permanent
}

type hostUsage struct {
	Host   string `json:"host"`
	Leases int    `json:"leases"`
	Limit  int    `json:"limit"` // 0: none
}

type event struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"`
	Proto        string    `json:"proto"`
	Host         string    `json:"host"`
	InternalPort uint16    `json:"internalPort"`
	ExternalPort uint16    `json:"externalPort"`
	Origin       string    `json:"origin"`
	Requester    string    `json:"requester"`
	Reason       string    `json:"reason"`
}

// addrString is a.String(), or "" for the zero Addr.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// snapshot reads the table.
func (h *Handler) snapshot() snapshot {
	t := h.cfg.Table
	s := snapshot{
		Now:        time.Now(),
		Started:    h.cfg.Started,
		Epoch:      t.Epoch(),
		EpochStart: t.EpochStart(),
		External:   addrString(t.ExternalAddress()),
		MaxPerHost: t.Policy().MaxPerHost,
		Admin:      h.cfg.Admin,
		// Empty lists, not null, when the table has nothing to show.
		AddressHistory: []addressChange{},
		Usage:          []hostUsage{},
		Events:         []event{},
	}
	for _, c := range t.AddressHistory() {
		s.AddressHistory = append(s.AddressHistory, addressChange{Time: c.Time, Addr: addrString(c.Addr)})
	}
	leases := t.Leases()
	slices.SortFunc(leases, gateway.CompareLeases)
	s.Leases = make([]lease, len(leases))
	for i, l := range leases {
		s.Leases[i] = leaseOf(l)
	}
	for _, u := range t.Usage() {
		s.Usage = append(s.Usage, hostUsage{Host: addrString(u.Host), Leases: u.Leases, Limit: u.Limit})
	}
	events, newest := t.Events(0)
	s.newest = newest
	if len(events) > maxEvents {
		events = events[len(events)-maxEvents:]
	}
	for _, e := range events {
		s.Events = append(s.Events, event{
			Seq: e.Seq, Time: e.Time, Kind: e.Kind.String(),
			Proto: e.Lease.Protocol.String(), Host: addrString(e.Lease.Internal.Addr()),
			InternalPort: e.Lease.Internal.Port(), ExternalPort: e.Lease.ExternalPort,
			Origin: e.Lease.Origin.String(), Requester: addrString(e.Requester), Reason: e.Reason,
		})
	}
	return s
}

func leaseOf(l gateway.Lease) lease {
	out := lease{
		Proto:        l.Protocol.String(),
		Host:         addrString(l.Internal.Addr()),
		InternalPort: l.Internal.Port(),
		ExternalPort: l.ExternalPort,
		Pinhole:      l.Pinhole,
		PinholeID:    l.PinholeID,
		Origin:       l.Origin.String(),
		Description:  l.Description,
		Nonce:        l.Nonce != [12]byte{},
		Created:      l.Created,
		Expires:      l.Expires,
	}
	for _, f := range l.Filters {
		s := f.Remote.String()
		if f.Port != 0 {
			s += " port " + strconv.Itoa(int(f.Port))
		}
		out.Filters = append(out.Filters, s)
	}
	return out
}

// serveSnapshot answers GET of SnapshotPath.
func (h *Handler) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	body, err := json.Marshal(h.snapshot())
	if err != nil {
		h.log.Error("status page: encode snapshot", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
