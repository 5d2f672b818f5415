package config

import (
	"slices"
)

// Directive names, as Changed reports them.
const (
	DirInterface      = "interface"
	DirListen         = "listen on"
	DirPortRange      = "port range"
	DirLifetime       = "lifetime max"
	DirRules          = "allow|deny"
	DirThirdParty     = "allow third-party"
	DirUPnP           = "upnp on|off"
	DirFriendlyName   = "upnp friendly name"
	DirHTTPPort       = "upnp http port"
	DirNotifyInterval = "upnp notify interval"
	DirSecureMode     = "upnp secure mode"
	DirUPnPVersion    = "upnp version"
	DirUPnPHostname   = "upnp hostname"
	DirUPnPMaxConns   = "upnp max connections per host"
	DirPCPMinLifetime = "pcp lifetime min"
	DirMaxPerHost     = "max mappings per host"
	DirMaxMappings    = "max mappings"
	DirRequestRate    = "request rate per host"
	DirStateFile      = "state file"
	DirUser           = "user"
	DirFirewall       = "firewall"
	DirControlSocket  = "control socket"
	DirMetricsListen  = "metrics listen"
	DirStatusPage     = "status page"
)

// Changed returns the names of the directives whose settings differ from a
// to b, in the order of the constants above; nil when b configures what a
// does. Line numbers do not count, and neither does the order of the
// "listen on" directives (the set served is the same); the order of the
// rules does (the first match wins).
func Changed(a, b *Config) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add(DirInterface, a.ExternalInterface != b.ExternalInterface)
	add(DirListen, !sameListenSet(a.Listen, b.Listen))
	add(DirPortRange, a.PortRange != b.PortRange)
	add(DirLifetime, a.MaxLifetime != b.MaxLifetime)
	add(DirRules, !slices.Equal(a.Rules, b.Rules))
	add(DirThirdParty, !slices.Equal(a.ThirdParty, b.ThirdParty))
	add(DirUPnP, a.UPnP.Enabled != b.UPnP.Enabled)
	add(DirFriendlyName, a.UPnP.FriendlyName != b.UPnP.FriendlyName)
	add(DirHTTPPort, a.UPnP.HTTPPort != b.UPnP.HTTPPort)
	add(DirNotifyInterval, a.UPnP.NotifyInterval != b.UPnP.NotifyInterval)
	add(DirSecureMode, a.UPnP.SecureMode != b.UPnP.SecureMode)
	add(DirUPnPVersion, a.UPnP.Version != b.UPnP.Version)
	add(DirUPnPHostname, !slices.Equal(a.UPnP.HostNames, b.UPnP.HostNames))
	add(DirUPnPMaxConns, a.UPnP.ConnectionsPerHost() != b.UPnP.ConnectionsPerHost())
	add(DirPCPMinLifetime, a.PCP.MinLifetime != b.PCP.MinLifetime)
	add(DirMaxPerHost, a.Limits.MaxPerHost != b.Limits.MaxPerHost)
	add(DirMaxMappings, a.Limits.MaxMappings != b.Limits.MaxMappings)
	add(DirRequestRate, a.RequestRate != b.RequestRate)
	add(DirStateFile, a.StateFile != b.StateFile)
	add(DirUser, a.User != b.User)
	add(DirFirewall, a.Firewall != b.Firewall)
	add(DirControlSocket, a.Observe.ControlSocket != b.Observe.ControlSocket)
	add(DirMetricsListen, a.Observe.MetricsListen != b.Observe.MetricsListen)
	add(DirStatusPage, a.Observe.StatusPage != b.Observe.StatusPage || a.Observe.StatusAdmin != b.Observe.StatusAdmin ||
		a.Observe.StatusToken != b.Observe.StatusToken)
	return out
}

// sameListenSet reports whether a and b name the same addresses and
// interfaces, in whatever order and however often.
func sameListenSet(a, b []Listen) bool {
	set := func(ls []Listen) []string {
		s := make([]string, len(ls))
		for i, l := range ls {
			s[i] = l.String()
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	return slices.Equal(set(a), set(b))
}
