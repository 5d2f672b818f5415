package config

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// PCP is the configuration of the PCP front-end (RFC 6887).
type PCP struct {
	// MinLifetime is the shortest lifetime a PCP mapping is granted ("pcp
	// lifetime min"); a shorter request gets this one (RFC 6887 §15: "The
	// PCP server SHOULD be configurable for permitted minimum and maximum
	// lifetime, and the minimum value SHOULD be 120 seconds"). The maximum
	// is "lifetime max", shared with the other protocols.
	MinLifetime time.Duration
}

// DefaultPCPMinLifetime is RFC 6887 §15's minimum lifetime.
const DefaultPCPMinLifetime = 120 * time.Second

func defaultPCP() PCP { return PCP{MinLifetime: DefaultPCPMinLifetime} }

// pcp parses "pcp lifetime min SECONDS".
func (p *parser) pcp(s statement) {
	const name = "pcp lifetime min"
	args := s.tokens[1:]
	if len(args) < 2 || args[0].text != "lifetime" || args[1].text != "min" {
		p.errorf(s.line, "pcp: expected %q", "lifetime min SECONDS")
		return
	}
	args = args[2:]
	if len(args) == 0 {
		p.errorf(s.line, "%s: missing seconds", name)
		return
	}
	if !p.once(s.line, &p.pcpMinAt, name) {
		return
	}
	w := args[0]
	n, err := strconv.ParseUint(w.text, 10, 32)
	if err != nil || n == 0 {
		p.errorf(w.line, "%s: %s is not a number of seconds (1-%d)", name, quoteNonNumber(w.text), uint64(math.MaxUint32))
		return
	}
	if p.extra(name, args[1:]) {
		return
	}
	p.cfg.PCP.MinLifetime = time.Duration(n) * time.Second
}

// checkPCP checks what depends on other directives: a minimum lifetime
// given must not exceed the maximum; the default one is cut to a shorter
// maximum.
func (p *parser) checkPCP() {
	c := p.cfg
	switch {
	case c.PCP.MinLifetime <= c.MaxLifetime:
	case p.pcpMinAt != 0:
		p.errorf(p.pcpMinAt, "pcp lifetime min %d is longer than lifetime max %d", c.PCP.MinLifetime/time.Second, c.MaxLifetime/time.Second)
	default:
		c.PCP.MinLifetime = c.MaxLifetime
	}
}

// pcpString writes the PCP directives as String does.
func pcpString(c PCP) string {
	return fmt.Sprintf("pcp lifetime min %d\n", c.MinLifetime/time.Second)
}
