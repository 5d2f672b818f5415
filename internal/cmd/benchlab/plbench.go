package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portlease/portlease/internal/netlab"
)

// loadResult is one run of plbench -json, as it prints it.
type loadResult struct {
	Protocol     string         `json:"protocol"`
	Op           string         `json:"op"`
	Requests     int            `json:"requests"`
	OK           int            `json:"ok"`
	Errors       int            `json:"errors"`
	ErrorsByKind map[string]int `json:"errors_by_kind,omitempty"`
	Seconds      float64        `json:"seconds"`
	Rate         float64        `json:"rate"`
	P50ms        float64        `json:"p50_ms"`
	P90ms        float64        `json:"p90_ms"`
	P99ms        float64        `json:"p99_ms"`
	Maxms        float64        `json:"max_ms"`
	Clients      int            `json:"clients"`
	StoppedEarly bool           `json:"stopped_early"`
	// Args is the command line given to plbench (ours, not plbench's).
	Args []string `json:"args"`
}

// load describes one plbench run.
type load struct {
	protocol string // "natpmp" or "upnp"
	op       string // "map", "renew" or "delete"
	n        int    // requests, one per mapping
	first    int    // first internal port
	budget   time.Duration
	rate     float64 // plbench -rate; 0: as fast as the gateway answers
}

// plbench runs the load generator on host with -json and returns what it
// printed. It stops starting requests after l.budget (-duration) and is
// killed if it has not finished 30 s later.
func (b *bench) plbench(ctx context.Context, host *netlab.Host, gwURL string, l load) (*loadResult, error) {
	args := []string{l.protocol}
	if l.protocol == "upnp" {
		args = append(args, "-url", gwURL)
	} else {
		args = append(args, "-gateway", gwURL)
	}
	args = append(args,
		"-op", l.op,
		"-n", strconv.Itoa(l.n),
		"-c", strconv.Itoa(b.clients),
		"-first", strconv.Itoa(l.first),
		"-proto", "both",
		"-lifetime", strconv.Itoa(leaseLifetime),
		"-duration", l.budget.String(),
		"-timeout", b.timeout.String(),
		"-tries", strconv.Itoa(b.tries),
		"-json", "-quiet",
	)
	if l.rate > 0 {
		args = append(args, "-rate", strconv.FormatFloat(l.rate, 'f', -1, 64))
	}
	ctx, cancel := context.WithTimeout(ctx, l.budget+30*time.Second)
	defer cancel()
	cmd := host.Command(ctx, b.plbenchPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	var r loadResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("plbench %s: %v; %v: %s", strings.Join(args, " "), runErr, err,
			strings.TrimSpace(stderr.String()))
	}
	r.Args = append([]string{"plbench"}, args...)
	return &r, nil
}

// portSpan is the number of internal ports that n requests with -proto both
// use: two mappings (TCP and UDP) a port.
func portSpan(n int) int { return (n + 1) / 2 }
