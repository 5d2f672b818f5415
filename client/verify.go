package client

import "time"

// verifyMappings makes the keeper check at once, on g, the kept mappings
// through g over method for which stale reports true (called with c.mu
// held): over NAT-PMP by asking for each again (idempotent on a gateway
// that holds it, a re-creation on one that lost it), over UPnP by
// GetSpecificPortMappingEntry, and AddPortMapping when it is missing. A
// verification that finds a mapping as it was is quiet; one that finds it
// lost makes it again and reports Recreated. It returns how many mappings
// are verified.
func (c *Client) verifyMappings(g *gateway, method Method, why string, stale func(*Mapping) bool) int {
	return c.verifyMappingsAt(g, method, why, stale, time.Now())
}

// verifyMappingsAt is verifyMappings at at, not before (RFC 6887 §14.1.1's
// wait after an announcement).
func (c *Client) verifyMappingsAt(g *gateway, method Method, why string, stale func(*Mapping) bool, at time.Time) int {
	n := 0
	c.mu.Lock()
	for m := range c.mappings {
		if m.bind == nil || m.bind.gw != g || m.bind.method != method || !stale(m) {
			continue
		}
		n++
		m.verify = true
		m.verifySeq++
		c.reschedule(m, at)
	}
	c.mu.Unlock()
	if n > 0 {
		c.log.Debug("verifying the mappings on the gateway", "gateway", g.route.gw, "via", method, "why", why,
			"mappings", n, "in", max(time.Until(at), 0).Round(time.Millisecond))
		c.poke()
	}
	return n
}
