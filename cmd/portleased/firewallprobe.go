package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
)

// probeTimeout bounds each program the probe runs (iptables-legacy-save).
const probeTimeout = 10 * time.Second

// probeFirewall finds what "firewall auto" decides on, cheaply and
// without changing the kernel: whether a netlink nftables request (a list
// of the tables) succeeds, which iptables-legacy tables of the network
// namespace hold rules, and which iptables-restore programs are
// installed.
//
// The legacy tables of the namespace are those /proc/net/ip_tables_names
// and ip6_tables_names list (missing files: x_tables is not loaded, so
// there are none). Only a listed table is read, with iptables-legacy-save
// (ip6tables-legacy-save), which dumps the listed tables alone: asking
// for a table by name (-t) would make the kernel instantiate it. Both need
// root: the files are the namespace's root's, mode 0440.
func probeFirewall(ctx context.Context) firewallFacts {
	var f firewallFacts
	f.nfTables = probeNfTables()
	f.legacyTables, f.legacyUnknown = probeLegacyTables(ctx)
	_, err := exec.LookPath("iptables-legacy-restore")
	f.legacyInstalled = err == nil
	_, err = exec.LookPath("iptables-restore")
	f.systemInstalled = err == nil
	return f
}

// probeNfTables lists the nftables tables of the namespace; an error
// wraps errNoPermission when it was refused for want of CAP_NET_ADMIN
// (nfnetlink asks it of every request) rather than for want of nf_tables.
func probeNfTables() error {
	conn, err := nftables.New()
	if err == nil {
		_, err = conn.ListTables()
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES):
		return fmt.Errorf("list nftables tables: %w: %w", errNoPermission, err)
	}
	return fmt.Errorf("list nftables tables: %w", err)
}

// legacyFamily is an iptables-legacy family: the kernel's list of the
// namespace's tables, and the program that dumps them.
type legacyFamily struct{ prefix, names, save string }

// legacyFamilies returns IPv4's and IPv6's.
func legacyFamilies() []legacyFamily {
	return []legacyFamily{
		{"", "/proc/net/ip_tables_names", "iptables-legacy-save"},
		{"ip6 ", "/proc/net/ip6_tables_names", "ip6tables-legacy-save"},
	}
}

// probeLegacyTables returns the iptables-legacy tables holding rules
// (IPv6 ones prefixed "ip6 "), or why they could not be read.
func probeLegacyTables(ctx context.Context) ([]string, error) {
	var tables []string
	for _, fam := range legacyFamilies() {
		names, err := os.ReadFile(fam.names)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return tables, err
		}
		if len(bytes.TrimSpace(names)) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		var stderr bytes.Buffer
		cmd := exec.CommandContext(cctx, fam.save)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			listed := strings.Join(strings.Fields(string(names)), ", ")
			return tables, fmt.Errorf("tables %s listed; %s: %w %s", listed, fam.save, err, strings.TrimSpace(stderr.String()))
		}
		for _, t := range tablesWithRules(out) {
			tables = append(tables, fam.prefix+t)
		}
	}
	return tables, nil
}

// tablesWithRules returns the tables of an iptables-save dump that hold
// something: a rule (-A), a chain of their own (":NAME - [0:0]") or a
// built-in chain whose policy is not ACCEPT. A table the kernel made with
// its built-in chains empty and accepting does nothing.
func tablesWithRules(dump []byte) []string {
	var tables []string
	table, used := "", false
	sc := bufio.NewScanner(bytes.NewReader(dump))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "*"):
			table, used = strings.TrimPrefix(line, "*"), false
		case line == "COMMIT":
			if used {
				tables = append(tables, table)
			}
			table, used = "", false
		case strings.HasPrefix(line, "-A "):
			used = true
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line); len(f) < 2 || f[1] != "ACCEPT" {
				used = true
			}
		}
	}
	return tables
}
