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
	now := time.Now()
	n := 0
	c.mu.Lock()
	for m := range c.mappings {
		if m.bind == nil || m.bind.gw != g || m.bind.method != method || !stale(m) {
			continue
		}
		n++
		m.verify = true
		m.verifySeq++
		c.reschedule(m, now)
	}
	c.mu.Unlock()
	if n > 0 {
		c.log.Debug("verifying the mappings on the gateway", "gateway", g.route.gw, "via", method, "why", why, "mappings", n)
		c.poke()
	}
	return n
}
