package config

import (
	"fmt"
	"math"
	"strconv"
)

// RequestRate is "request rate per host N [burst M]": the requests per
// second one source address may sustain, per service (NAT-PMP and PCP one
// budget, UPnP's SOAP actions another), and how many it may make at once
// after a pause. The zero value, "request rate per host none", is no limit.
type RequestRate struct {
	// PerSecond is N; 0 for none.
	PerSecond int
	// Burst is M: when the directive names no burst, 4×N.
	Burst int
}

// The limit when the file names none, "request rate per host 50 burst
// 200": far above what a client asks in normal use (a few requests at
// start, one per renewal), far below a flood.
const (
	DefaultRequestRatePerSecond = 50
	DefaultRequestRateBurst     = 200
)

// String writes r as its directive's arguments: "N burst M" or "none".
func (r RequestRate) String() string {
	if r.PerSecond == 0 {
		return "none"
	}
	return fmt.Sprintf("%d burst %d", r.PerSecond, r.Burst)
}

// request parses "request rate per host N [burst M]" and "request rate per
// host none".
func (p *parser) request(s statement) {
	const name = "request rate per host"
	args := s.tokens[1:]
	if len(args) < 3 || args[0].text != "rate" || args[1].text != "per" || args[2].text != "host" {
		p.errorf(s.line, "request: expected %q", "rate per host N [burst M]")
		return
	}
	args = args[3:]
	if len(args) == 0 {
		p.errorf(s.line, "%s: missing number (or none)", name)
		return
	}
	if !p.once(s.line, &p.requestRateAt, name) {
		return
	}
	if args[0].text == "none" {
		if !p.extra(name+" none", args[1:]) {
			p.cfg.RequestRate = RequestRate{}
		}
		return
	}
	n, ok := p.count(name, args[0])
	if !ok {
		return
	}
	r := RequestRate{PerSecond: n, Burst: min(4*n, math.MaxInt32)}
	args = args[1:]
	if len(args) > 0 && args[0].text == "burst" {
		if len(args) == 1 {
			p.errorf(args[0].line, "%s: burst: missing number", name)
			return
		}
		m, ok := p.count(name+" burst", args[1])
		if !ok {
			return
		}
		r.Burst = m
		args = args[2:]
	}
	if p.extra(name, args) {
		return
	}
	p.cfg.RequestRate = r
}

// count parses w as a positive number for directive what.
func (p *parser) count(what string, w token) (int, bool) {
	n, err := strconv.ParseUint(w.text, 10, 31)
	if err != nil || n == 0 {
		p.errorf(w.line, "%s: %s is not a number (1-%d)", what, quoteNonNumber(w.text), math.MaxInt32)
		return 0, false
	}
	return int(n), true
}
