package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/portlease/portlease/internal/netlab"
)

// chainPrefix begins the name of every chain portleased's iptables backend
// makes (PORTLEASE-PREROUTING, PORTLEASE-FORWARD, ...).
const chainPrefix = "PORTLEASE-"

// iptablesSave runs the save program of firewall ("iptables-legacy" or
// "iptables-nft": iptables-legacy-save, iptables-nft-save; with v6,
// ip6tables-legacy-save, ip6tables-nft-save) in host's namespace, for table
// when not empty, and returns what it printed on its standard output. A
// failure is an error naming the program and what it wrote on its standard
// error.
func iptablesSave(ctx context.Context, host *netlab.Host, firewall string, v6 bool, table string) (string, error) {
	prog := firewall + "-save"
	if v6 {
		prog = "ip6tables" + strings.TrimPrefix(prog, "iptables")
	}
	args := []string{prog}
	if table != "" {
		args = append(args, "-t", table)
	}
	cmd := host.Command(ctx, prog, args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// countDNATMappings counts the IPv4 mappings in save, the iptables-save
// output of a nat table: the distinct (protocol, destination port) of the
// rules with a DNAT target in the PORTLEASE-* chains, so that a mapping
// translated in more than one chain (from the WAN, and for hairpinning
// from the LAN or the gateway itself) counts once. A DNAT rule without -p
// or --dport counts as its whole specification. It fails when save
// declares no PORTLEASE-* chain: then the backend's chains are not there
// at all, which is not a table of no mappings.
func countDNATMappings(save string) (int, error) {
	chains := 0
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":"+chainPrefix) {
			chains++
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" || !strings.HasPrefix(f[1], chainPrefix) || !hasTarget(f, "DNAT") {
			continue
		}
		seen[mappingKey(f[2:])] = true
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("iptables-save output: %w", err)
	}
	if chains == 0 {
		return 0, errors.New("iptables-save: no " + chainPrefix + "* chain in the nat table")
	}
	return len(seen), nil
}

// hasTarget tells whether the rule's fields jump to target (-j target).
func hasTarget(f []string, target string) bool {
	for i := 0; i+1 < len(f); i++ {
		if (f[i] == "-j" || f[i] == "--jump") && f[i+1] == target {
			return true
		}
	}
	return false
}

// mappingKey is a rule's protocol and destination port ("tcp 5352"), or
// its whole specification when it lacks either.
func mappingKey(spec []string) string {
	var proto, port string
	for i := 0; i+1 < len(spec); i++ {
		switch spec[i] {
		case "-p", "--protocol":
			proto = spec[i+1]
		case "--dport", "--destination-port":
			port = spec[i+1]
		}
	}
	if proto == "" || port == "" {
		return strings.Join(spec, " ")
	}
	return proto + " " + port
}

// leftovers returns the lines of save, iptables-save output of any tables,
// that are portleased's: its PORTLEASE-* chains, the rules in them and the
// jumps to them.
func leftovers(save string) []string {
	var left []string
	for line := range strings.Lines(save) {
		line = strings.TrimRight(line, "\n")
		if !strings.HasPrefix(line, "#") && strings.Contains(line, chainPrefix) {
			left = append(left, line)
		}
	}
	return left
}

// iptablesLeftovers lists what portleased with firewall left in the iptables
// and ip6tables tables of host's namespace; an error when a save program
// fails.
func iptablesLeftovers(ctx context.Context, host *netlab.Host, firewall string) ([]string, error) {
	var left []string
	for _, v6 := range []bool{false, true} {
		save, err := iptablesSave(ctx, host, firewall, v6, "")
		if err != nil {
			return nil, err
		}
		left = append(left, leftovers(save)...)
	}
	return left, nil
}
