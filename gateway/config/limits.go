package config

import (
	"fmt"
	"math"
	"strconv"
)

// Limits are the fair shares of the lease table: "max mappings per host"
// and "max mappings". Zero means none (unlimited), as in gateway.Policy.
type Limits struct {
	// MaxPerHost is the number of leases (IPv4 mappings and IPv6 pinholes
	// of every protocol together) one internal address may hold.
	MaxPerHost int
	// MaxMappings is the number of leases the whole table may hold.
	MaxMappings int
}

// The default limits: far above what a home host asks for (a few dozen
// mappings), low enough that one host cannot take the 64,512 ports of the
// default range, and a table that stays within a few MiB.
const (
	DefaultMaxPerHost  = 1024
	DefaultMaxMappings = 65536
)

func defaultLimits() Limits {
	return Limits{MaxPerHost: DefaultMaxPerHost, MaxMappings: DefaultMaxMappings}
}

// max parses "max mappings per host N|none" and "max mappings N|none".
func (p *parser) max(s statement) {
	args, ok := p.keyword(s, "mappings")
	if !ok {
		return
	}
	name, at, limit := "max mappings", &p.maxMappingsAt, &p.cfg.Limits.MaxMappings
	if len(args) > 0 && args[0].text == "per" {
		if len(args) < 2 || args[1].text != "host" {
			p.errorf(args[0].line, "max mappings per: expected %q", "host")
			return
		}
		name, at, limit = "max mappings per host", &p.maxPerHostAt, &p.cfg.Limits.MaxPerHost
		args = args[2:]
	}
	if len(args) == 0 {
		p.errorf(s.line, "%s: missing number (or none)", name)
		return
	}
	if !p.once(s.line, at, name) {
		return
	}
	w := args[0]
	n := 0
	if w.text != "none" {
		v, err := strconv.ParseUint(w.text, 10, 31)
		if err != nil || v == 0 {
			p.errorf(w.line, "%s: %s is not a number of leases (1-%d) or none", name, quoteNonNumber(w.text), math.MaxInt32)
			return
		}
		n = int(v)
	}
	if p.extra(name, args[1:]) {
		return
	}
	*limit = n
}

// limitsString writes the limit directives as String does.
func limitsString(l Limits) string {
	word := func(n int) string {
		if n == 0 {
			return "none"
		}
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("max mappings per host %s\nmax mappings %s\n", word(l.MaxPerHost), word(l.MaxMappings))
}
