package gateway

// portProbes are the answers of Config.Reserved that one Map call has
// collected, in the order asked; there are one or two as a rule.
type portProbes []portProbe

type portProbe struct {
	port     uint16
	reserved bool
}

func (ps portProbes) lookup(port uint16) (reserved, known bool) {
	for _, p := range ps {
		if p.port == port {
			return p.reserved, true
		}
	}
	return false, false
}

// allocate picks the external port for a new lease. It must be called with
// t.mu held. When the port it would pick next has not been asked about
// (Config.Reserved), it returns that port as probe instead, for the caller
// to ask about without the lock and call again with the answer in probed.
func (t *Table) allocate(req *MapRequest, probed portProbes) (port, probe uint16, err error) {
	allowed := t.policy.allowedPorts(req.requester(), req.Internal.Addr(), req.Internal.Port())
	if len(allowed) == 0 {
		return 0, 0, ErrNotAuthorized
	}
	// usable reports whether p can be handed out, or that only a probe
	// can tell.
	usable := func(p uint16) (ok, unknown bool) {
		if p == 0 || !inRanges(allowed, p) {
			return false, false
		}
		if _, taken := t.byExternal[mappingKey{req.Protocol, p}]; taken {
			return false, false
		}
		if t.reserved == nil {
			return true, false
		}
		reserved, known := probed.lookup(p)
		return known && !reserved, !known
	}
	// pick decides on one candidate: take it, probe it, or go on.
	pick := func(p uint16) (port, probe uint16, done bool) {
		switch ok, unknown := usable(p); {
		case ok:
			return p, 0, true
		case unknown:
			return 0, p, true
		}
		return 0, 0, false
	}
	if req.Exact {
		if !inRanges(allowed, req.ExternalPort) {
			return 0, 0, ErrNotAuthorized
		}
		if port, probe, done := pick(req.ExternalPort); done {
			return port, probe, nil
		}
		return 0, 0, ErrConflict
	}
	var preferred [2]uint16
	if other, ok := t.byInternalEndpoint(companion(req.Protocol), req.Internal); ok {
		preferred[0] = t.store.get(other).eport
	}
	preferred[1] = req.ExternalPort
	for _, p := range preferred {
		if port, probe, done := pick(p); done {
			return port, probe, nil
		}
	}
	// A random pick probed free in an earlier round is taken if it still
	// is, so that rounds come to an end.
	for _, pr := range probed {
		if ok, _ := usable(pr.port); ok {
			return pr.port, 0, nil
		}
	}
	// A port drawn at random among the free ones the rules allow, less
	// those found reserved: none left is a refusal that looked at no port
	// (freeports.go).
	var room [8]uint16
	free := newFreePorts(&t.order, req.Protocol, allowed, probed, func(p uint16) bool {
		_, taken := t.byExternal[mappingKey{req.Protocol, p}]
		return taken
	}, room[:0])
	if free.total == 0 {
		return 0, 0, ErrOutOfResources
	}
	if port, probe, done := pick(free.nth(t.rng.IntN(free.total))); done {
		return port, probe, nil
	}
	panic("gateway: a free port drawn is not usable")
}

func inRanges(rs []PortRange, p uint16) bool {
	for _, r := range rs {
		if r.Contains(p) {
			return true
		}
	}
	return false
}
