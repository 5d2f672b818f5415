package igdclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/portlease/portlease/upnp"
)

const (
	// MaxPortMappings bounds the entries PortMappings reads: the whole
	// 16-bit index space of GetGenericPortMappingEntry.
	MaxPortMappings = 65536

	// maxWildcardTries bounds the external ports tried by AddPortMapping
	// for a wildcard request on a WANIPConnection:1 service (the internal
	// port, then random ones).
	maxWildcardTries = 8

	// maxAddAttempts bounds the AddPortMapping requests for one external
	// port: each fault handled changes one argument once.
	maxAddAttempts = 5

	// defaultDescription is sent when the mapping has none: some devices
	// refuse an empty NewPortMappingDescription.
	defaultDescription = "portlease"

	// lowestRandomPort is the lowest external port picked at random: some
	// devices refuse mappings of privileged ports.
	lowestRandomPort = 1024
)

// Granted is the outcome of AddPortMapping.
type Granted struct {
	// Mapping is the mapping as read back from the router when ReadBack,
	// else as last sent. Its ExternalPort is the port granted and its
	// LeaseDuration the lease granted (0: no lease).
	Mapping upnp.PortMapping
	// Permanent: the mapping has no lease (it was sent with lease 0 after
	// 725 or 402, or asked for with 0, or read back with 0). It lives until
	// deleted or until the router forgets it: delete it when done.
	Permanent bool
	// ReadBack: Mapping comes from GetSpecificPortMappingEntry after the
	// grant, not from what was sent.
	ReadBack bool
	// Faults lists the faults the router answered on the way to the grant
	// and that were worked around, in order: 725 or 402 (lease dropped to
	// 0), 724 (external port set to the internal one), 718 (our own stale
	// mapping replaced), 718 on wildcard tries (another port tried).
	Faults []upnp.ErrorCode
}

// ConflictError reports that the external port is held by another mapping
// (718 ConflictInMappingEntry, or a grant that reads back as someone
// else's). It matches ErrConflict with errors.Is and, when the router said
// 718, *upnp.Fault with errors.As.
type ConflictError struct {
	Protocol     string
	ExternalPort uint16
	// Holder is the mapping that holds the port when HolderKnown.
	Holder      upnp.PortMapping
	HolderKnown bool
	// Fault is the router's fault, nil when the conflict was found on
	// reading back a grant.
	Fault error
}

// Error describes the conflict and its holder.
func (e *ConflictError) Error() string {
	s := fmt.Sprintf("igdclient: %s external port %d held by another mapping", e.Protocol, e.ExternalPort)
	if e.HolderKnown {
		s += fmt.Sprintf(" (%s:%d %q)", e.Holder.InternalClient, e.Holder.InternalPort, e.Holder.Description)
	}
	return s
}

// Unwrap returns ErrConflict and the router's fault.
func (e *ConflictError) Unwrap() []error {
	if e.Fault == nil {
		return []error{ErrConflict}
	}
	return []error{ErrConflict, e.Fault}
}

// notFoundError is ErrNotFound carrying the router's fault.
type notFoundError struct{ fault error }

func (e *notFoundError) Error() string   { return ErrNotFound.Error() + ": " + e.fault.Error() }
func (e *notFoundError) Unwrap() []error { return []error{ErrNotFound, e.fault} }

// AddPortMapping asks for m and returns what was granted.
//
// Defaults: an empty InternalClient is g.Local; an empty Description is
// "portlease"; Protocol is sent upper-case (some devices refuse "udp");
// Enabled is always sent as true, since a disabled mapping is of no use.
// InternalPort must not be 0.
//
// External port 0 asks the router to pick: 0 itself is never sent, because
// to AddPortMapping it is a wildcard that forwards every unmapped port
// (WANIPConnection:2 §2.3.18). On WANIPConnection:2 the request becomes
// AddAnyPortMapping with the internal port as a hint (a random port ≥1024
// when the internal one is privileged); on :1, and on :2 devices that do not
// implement AddAnyPortMapping, the internal port is tried and then random
// ports, up to 8 in all, skipping those in conflict.
//
// Quirks handled, each recorded in Granted.Faults:
//   - 725 OnlyPermanentLeasesSupported, and 402 InvalidArgs answered to a
//     lease some devices dislike (reported for an ARRIS NVG578LX and others):
//     the request is repeated with lease 0 and the grant is Permanent. A
//     second 402 is returned as is (402 also means a full table on some).
//   - 724 SamePortValuesRequired: the request is repeated with the external
//     port set to the internal one; Granted.Mapping shows the port granted.
//   - 718 ConflictInMappingEntry: the holder is read with
//     GetSpecificPortMappingEntry. If it is our own mapping (same internal
//     client and port; some devices refuse to refresh a mapping with a new
//     lease), it is deleted and added again; otherwise the error is a
//     *ConflictError naming the holder.
//
// After the grant the mapping is read back, because routers shorten, fix
// (one vendor always grants 86400 s) or ignore leases: Granted.Mapping is
// what the router holds when it can be read. A read-back that shows another
// internal client or port is a *ConflictError.
func (g *IGD) AddPortMapping(ctx context.Context, m upnp.PortMapping) (Granted, error) {
	m, err := g.request(m)
	if err != nil {
		return Granted{}, err
	}
	if m.ExternalPort != 0 {
		return g.addFixed(ctx, m)
	}
	if g.Version() >= 2 {
		gr, err := g.addAny(ctx, m)
		code, _ := faultCode(err)
		if code != upnp.ErrorCode(401) && code != upnp.ErrorCode(602) {
			return gr, err
		}
		// 401 InvalidAction, 602 OptionalActionNotImplemented: an IGD:2
		// in name only.
		g.c.log.Warn("igdclient: AddAnyPortMapping not implemented, trying ports one by one",
			"igd", g.String(), "err", err)
	}
	return g.addWildcardV1(ctx, m)
}

// request checks m and fills in the defaults described at AddPortMapping.
func (g *IGD) request(m upnp.PortMapping) (upnp.PortMapping, error) {
	p, err := protocol(m.Protocol)
	if err != nil {
		return m, err
	}
	m.Protocol = p
	if m.InternalPort == 0 {
		return m, errors.New("igdclient: internal port 0")
	}
	if m.InternalClient == "" {
		if !g.Local.IsValid() {
			return m, errors.New("igdclient: no internal client and no local address")
		}
		m.InternalClient = g.Local.String()
	}
	m.Enabled = true
	if m.Description == "" {
		m.Description = defaultDescription
	}
	return m, nil
}

// protocol returns p as the IGD wants it, "TCP" or "UDP".
func protocol(p string) (string, error) {
	switch u := strings.ToUpper(p); u {
	case "TCP", "UDP":
		return u, nil
	}
	return "", fmt.Errorf("igdclient: protocol %q not TCP or UDP", p)
}

// addFixed maps m.ExternalPort (not 0), working around the faults described
// at AddPortMapping.
func (g *IGD) addFixed(ctx context.Context, m upnp.PortMapping) (Granted, error) {
	var (
		faults       []upnp.ErrorCode
		leaseDropped bool // lease set to 0 after 725 or 402
		portChanged  bool // external port set to internal after 724
		replaced     bool // our own stale mapping deleted after 718
	)
	for range maxAddAttempts {
		_, err := g.call(ctx, upnp.AddPortMapping(g.Service.ServiceType, m))
		if err == nil {
			return g.readBack(ctx, m, faults)
		}
		code, ok := faultCode(err)
		if !ok {
			return Granted{Faults: faults}, err
		}
		switch {
		case (code == upnp.OnlyPermanentLeasesSupported || code == upnp.InvalidArgs) &&
			m.LeaseDuration != 0 && !leaseDropped:
			g.c.log.Warn("igdclient: lease refused, asking for a permanent mapping",
				"igd", g.String(), "code", int(code), "lease", m.LeaseDuration)
			m.LeaseDuration = 0
			leaseDropped = true
		case code == upnp.SamePortValuesRequired && m.ExternalPort != m.InternalPort && !portChanged:
			g.c.log.Warn("igdclient: router requires external port = internal port",
				"igd", g.String(), "eport", m.ExternalPort, "iport", m.InternalPort)
			m.ExternalPort = m.InternalPort
			portChanged = true
		case code == upnp.ConflictInMappingEntry:
			holder, herr := g.GetSpecificPortMappingEntry(ctx, m.Protocol, m.ExternalPort)
			if replaced || herr != nil || !sameTarget(holder, m) {
				return Granted{Faults: faults}, &ConflictError{
					Protocol: m.Protocol, ExternalPort: m.ExternalPort,
					Holder: holder, HolderKnown: herr == nil, Fault: err,
				}
			}
			g.c.log.Warn("igdclient: router refused to refresh our own mapping, replacing it",
				"igd", g.String(), "proto", m.Protocol, "eport", m.ExternalPort)
			if derr := g.DeletePortMapping(ctx, m.Protocol, m.ExternalPort); derr != nil && !errors.Is(derr, ErrNotFound) {
				return Granted{Faults: faults}, derr
			}
			replaced = true
		default:
			return Granted{Faults: faults}, err
		}
		faults = append(faults, code)
	}
	return Granted{Faults: faults}, fmt.Errorf("igdclient: AddPortMapping: gave up after %d attempts", maxAddAttempts)
}

// addAny maps m with AddAnyPortMapping (WANIPConnection:2 §2.5.16): the
// router grants the hinted external port or another.
func (g *IGD) addAny(ctx context.Context, m upnp.PortMapping) (Granted, error) {
	m.ExternalPort = m.InternalPort
	if m.ExternalPort < lowestRandomPort {
		m.ExternalPort = randomPort()
	}
	var faults []upnp.ErrorCode
	leaseDropped, portChanged := false, false
	for range maxAddAttempts {
		r, err := g.call(ctx, upnp.AddAnyPortMapping(g.Service.ServiceType, m))
		if err == nil {
			port, perr := upnp.ReservedPort(r)
			if perr != nil {
				return Granted{Faults: faults}, fmt.Errorf("igdclient: AddAnyPortMapping: %w", perr)
			}
			m.ExternalPort = port
			return g.readBack(ctx, m, faults)
		}
		code, ok := faultCode(err)
		if !ok {
			return Granted{Faults: faults}, err
		}
		switch {
		case (code == upnp.OnlyPermanentLeasesSupported || code == upnp.InvalidArgs) &&
			m.LeaseDuration != 0 && !leaseDropped:
			g.c.log.Warn("igdclient: lease refused, asking for a permanent mapping",
				"igd", g.String(), "code", int(code), "lease", m.LeaseDuration)
			m.LeaseDuration = 0
			leaseDropped = true
		case code == upnp.SamePortValuesRequired && m.ExternalPort != m.InternalPort && !portChanged:
			m.ExternalPort = m.InternalPort
			portChanged = true
		default:
			return Granted{Faults: faults}, err
		}
		faults = append(faults, code)
	}
	return Granted{Faults: faults}, fmt.Errorf("igdclient: AddAnyPortMapping: gave up after %d attempts", maxAddAttempts)
}

// addWildcardV1 maps m on an external port of our choosing: the internal
// port first, then random ones, skipping those in conflict. It stops early
// when the router requires equal ports (724), since then no other port can
// work.
func (g *IGD) addWildcardV1(ctx context.Context, m upnp.PortMapping) (Granted, error) {
	tried := make([]uint16, 0, maxWildcardTries)
	var faults []upnp.ErrorCode
	var lastErr error
	for i := range maxWildcardTries {
		p := m.InternalPort
		if i > 0 {
			p = randomPort()
			for slices.Contains(tried, p) {
				p = randomPort()
			}
		}
		tried = append(tried, p)
		try := m
		try.ExternalPort = p
		gr, err := g.addFixed(ctx, try)
		faults = append(faults, gr.Faults...)
		if err == nil {
			gr.Faults = faults
			return gr, nil
		}
		if !errors.Is(err, ErrConflict) {
			return Granted{Faults: faults}, err
		}
		lastErr = err
		faults = append(faults, upnp.ConflictInMappingEntry)
		if slices.Contains(gr.Faults, upnp.SamePortValuesRequired) {
			break
		}
	}
	return Granted{Faults: faults}, lastErr
}

// randomPort returns a port in [lowestRandomPort, 65535].
func randomPort() uint16 {
	return uint16(lowestRandomPort + rand.N(65536-lowestRandomPort))
}

// readBack completes a grant of m with what the router holds.
func (g *IGD) readBack(ctx context.Context, m upnp.PortMapping, faults []upnp.ErrorCode) (Granted, error) {
	gr := Granted{Mapping: m, Permanent: m.LeaseDuration == 0, Faults: faults}
	got, err := g.GetSpecificPortMappingEntry(ctx, m.Protocol, m.ExternalPort)
	if err != nil {
		// Granted but not readable: some devices do not implement
		// GetSpecificPortMappingEntry properly. Report what was sent.
		g.c.log.Debug("igdclient: mapping granted but not read back", "igd", g.String(),
			"proto", m.Protocol, "eport", m.ExternalPort, "err", err)
		return gr, nil
	}
	if !sameTarget(got, m) {
		return Granted{Faults: faults}, &ConflictError{
			Protocol: m.Protocol, ExternalPort: m.ExternalPort, Holder: got, HolderKnown: true,
		}
	}
	if got.LeaseDuration != m.LeaseDuration {
		g.c.log.Info("igdclient: router changed the lease", "igd", g.String(),
			"proto", m.Protocol, "eport", m.ExternalPort, "asked", m.LeaseDuration, "granted", got.LeaseDuration)
	}
	gr.Mapping = got
	gr.ReadBack = true
	gr.Permanent = gr.Permanent || got.LeaseDuration == 0
	return gr, nil
}

// sameTarget reports whether mapping got forwards to the internal client
// and port of m. Addresses are compared as addresses when both parse
// ("192.168.001.010" is written by some devices), else as text.
func sameTarget(got, m upnp.PortMapping) bool {
	if got.InternalPort != m.InternalPort {
		return false
	}
	a, aerr := parseLooseAddr(got.InternalClient)
	b, berr := parseLooseAddr(m.InternalClient)
	if aerr == nil && berr == nil {
		return a == b
	}
	return strings.EqualFold(strings.TrimSpace(got.InternalClient), strings.TrimSpace(m.InternalClient))
}

// parseLooseAddr parses an IPv4 address whose fields may carry leading
// zeros, or any address netip accepts.
func parseLooseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), nil
	}
	f := strings.Split(s, ".")
	if len(f) != 4 {
		return netip.Addr{}, fmt.Errorf("igdclient: address %q", s)
	}
	var b [4]byte
	for i, x := range f {
		n, err := strconv.ParseUint(x, 10, 8)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("igdclient: address %q", s)
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), nil
}

// DeletePortMapping removes the mapping of external port externalPort (any
// remote host). A router that holds no such mapping answers 714
// NoSuchEntryInArray: the error then matches ErrNotFound, and callers may
// treat the deletion as done.
func (g *IGD) DeletePortMapping(ctx context.Context, proto string, externalPort uint16) error {
	p, err := protocol(proto)
	if err != nil {
		return err
	}
	_, err = g.call(ctx, upnp.DeletePortMapping(g.Service.ServiceType, "", externalPort, p))
	if code, ok := faultCode(err); ok && code == upnp.NoSuchEntryInArray {
		return &notFoundError{err}
	}
	return err
}

// GetSpecificPortMappingEntry returns the mapping of external port
// externalPort (any remote host); a missing one is ErrNotFound (714).
//
// Quirk: a few devices answer success with empty fields for a mapping they
// do not hold; that is ErrNotFound too.
func (g *IGD) GetSpecificPortMappingEntry(ctx context.Context, proto string, externalPort uint16) (upnp.PortMapping, error) {
	p, err := protocol(proto)
	if err != nil {
		return upnp.PortMapping{}, err
	}
	r, err := g.call(ctx, upnp.GetSpecificPortMappingEntry(g.Service.ServiceType, "", externalPort, p))
	if code, ok := faultCode(err); ok && code == upnp.NoSuchEntryInArray {
		return upnp.PortMapping{}, &notFoundError{err}
	}
	if err != nil {
		return upnp.PortMapping{}, err
	}
	if emptyEntry(r) {
		return upnp.PortMapping{}, fmt.Errorf("igdclient: GetSpecificPortMappingEntry: empty answer: %w", ErrNotFound)
	}
	m, err := upnp.SpecificEntry(r, externalPort, p)
	if err != nil {
		return upnp.PortMapping{}, fmt.Errorf("igdclient: GetSpecificPortMappingEntry: %w", err)
	}
	return m, nil
}

// emptyEntry reports whether a mapping entry answer carries neither an
// internal client nor an internal port.
func emptyEntry(r upnp.Response) bool {
	c, _ := r.Get("NewInternalClient")
	p, _ := r.Get("NewInternalPort")
	return strings.TrimSpace(c) == "" && (strings.TrimSpace(p) == "" || strings.TrimSpace(p) == "0")
}

// PortMappings lists the router's mappings with GetGenericPortMappingEntry,
// from index 0 until the router says the index is past the end.
//
// Quirks: routers differ on that end marker: 713 SpecifiedArrayIndexInvalid
// (the specified one, miniupnpd), 714 NoSuchEntryInArray, 402 InvalidArgs;
// a few answer an empty entry. All end the list. A router that ignores the
// index and answers its first entry again ends it too. At most
// MaxPortMappings entries are read.
//
// GetListOfPortMappings (WANIPConnection:2) is not used: its NewManage
// semantics differ among devices (all mappings, or only the caller's), and
// miniupnpd 2.3.1 overflows its heap past 128 mappings of one protocol.
//
// On another error, PortMappings returns the entries read so far with it.
func (g *IGD) PortMappings(ctx context.Context) ([]upnp.PortMapping, error) {
	var out []upnp.PortMapping
	for i := range MaxPortMappings {
		r, err := g.call(ctx, upnp.GetGenericPortMappingEntry(g.Service.ServiceType, i))
		if err != nil {
			switch code, _ := faultCode(err); code {
			case upnp.SpecifiedArrayIndexInvalid, upnp.NoSuchEntryInArray, upnp.InvalidArgs:
				return out, nil
			}
			return out, err
		}
		if emptyEntry(r) {
			return out, nil
		}
		m, err := upnp.GenericEntry(r)
		if err != nil {
			return out, fmt.Errorf("igdclient: GetGenericPortMappingEntry %d: %w", i, err)
		}
		if i > 0 && sameKey(m, out[0]) {
			g.c.log.Warn("igdclient: router ignores the entry index; list cut", "igd", g.String(), "index", i)
			return out, nil
		}
		out = append(out, m)
	}
	return out, nil
}

// sameKey reports whether a and b are the same table entry (remote host,
// external port, protocol).
func sameKey(a, b upnp.PortMapping) bool {
	return a.ExternalPort == b.ExternalPort && strings.EqualFold(a.Protocol, b.Protocol) &&
		a.RemoteHost == b.RemoteHost
}
