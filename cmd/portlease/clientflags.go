package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/portlease/portlease/client"
)

// clientFlags are the options every command has for finding the gateway.
type clientFlags struct {
	method    string
	gateway   string
	iface     string
	url       string
	logLevel  string
	discovery time.Duration
	// allowForeign allows UPnP control URLs on another host than the
	// gateway.
	allowForeign bool
}

const clientFlagsHelp = `Gateway options (every command):
  --protocol auto|pcp|natpmp|upnp
                  The protocol to speak to the gateway (default auto: PCP
                  where the gateway answers it, then NAT-PMP, then UPnP IGD;
                  the log says which was chosen). IPv6 addresses (pinholes)
                  are opened over PCP through the IPv6 default router, else
                  over UPnP (the IGD's WANIPv6FirewallControl).
  --gateway ADDR  The gateway's address; default: the default route of each
                  interface.
  --interface IF  Use only this interface.
  --url URL       UPnP: the IGD's description URL; skips SSDP discovery.
  --discovery-wait DURATION
                  How long to wait for SSDP answers (default 2s).
  --allow-foreign-control-url
                  UPnP: let the IGD's description, control URLs and
                  redirects name a host other than the gateway that
                  answered (default: refused, with an error naming both
                  hosts). Each use is logged as a warning. Only for a
                  router that needs it.
  --log-level LEVEL
                  debug, info, warn or error (default from PORTLEASE_LOG, else
                  warn for one-shot commands and info for keep).
`

func (f *clientFlags) register(fs *flag.FlagSet, defaultLevel string) {
	fs.StringVar(&f.method, "protocol", "auto", "")
	fs.StringVar(&f.gateway, "gateway", "", "")
	fs.StringVar(&f.iface, "interface", "", "")
	fs.StringVar(&f.url, "url", "", "")
	fs.DurationVar(&f.discovery, "discovery-wait", 2*time.Second, "")
	fs.BoolVar(&f.allowForeign, "allow-foreign-control-url", false, "")
	level := defaultLevel
	if env := os.Getenv("PORTLEASE_LOG"); env != "" {
		level = env
	}
	fs.StringVar(&f.logLevel, "log-level", level, "")
}

// config turns the flags into a client.Config.
func (f *clientFlags) config(log *slog.Logger) (client.Config, error) {
	cfg := client.Config{Logger: log, Interface: f.iface, DescriptionURL: f.url, DiscoveryWait: f.discovery,
		AllowForeignControlURL: f.allowForeign}
	m, err := client.ParseMethod(f.method)
	if err != nil {
		return cfg, fmt.Errorf("--protocol %q: want auto, pcp, natpmp or upnp", f.method)
	}
	cfg.Method = m
	if f.gateway != "" {
		a, err := netip.ParseAddr(f.gateway)
		if err != nil {
			return cfg, fmt.Errorf("--gateway %q: not an IP address", f.gateway)
		}
		cfg.Gateway = a
	}
	return cfg, nil
}

// parseProtocol reads TCP or UDP, in any case.
func parseProtocol(s string) (client.Protocol, error) {
	switch strings.ToUpper(s) {
	case "TCP":
		return client.TCP, nil
	case "UDP":
		return client.UDP, nil
	}
	return "", fmt.Errorf("protocol %q: want tcp or udp", s)
}

// parsePort reads a port number, 1 to 65535.
func parsePort(what, s string) (uint16, error) {
	var p int
	if _, err := fmt.Sscanf(s, "%d", &p); err != nil || fmt.Sprint(p) != s || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s %q: not a port (1-65535)", what, s)
	}
	return uint16(p), nil
}
