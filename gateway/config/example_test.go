package config_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portlease/portlease/gateway/config"
)

func ExampleParse() {
	const conf = `# portleased.conf: an OpenBSD natpmpd.conf and portleased's extensions
interface eth0                  # the WAN side
listen on 198.51.100.1          # the LAN gateway address
listen on br-lan

port range 20000-29999
lifetime max 7200

# miniupnpd-style rules, first match wins
allow 20000-29999 198.51.100.0/255.255.255.0 1024-65535
allow 20000-29999 2001:db8:100::/64 1024-65535
deny  0-65535 0.0.0.0/0 0-65535
`
	c, err := config.Parse("portleased.conf", strings.NewReader(conf))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range c.Listen {
		fmt.Printf("line %d: listen on %s\n", l.Line, l)
	}
	fmt.Println("---")
	fmt.Print(c)

	_, err = config.Parse("portleased.conf", strings.NewReader("interface eth0\nlisen on eth1\nport range 1-70000\n"))
	var list config.ErrorList
	if errors.As(err, &list) {
		fmt.Println("---")
		for _, e := range list {
			fmt.Println(e)
		}
	}
	// Output:
	// line 3: listen on 198.51.100.1
	// line 4: listen on br-lan
	// ---
	// interface eth0
	// listen on 198.51.100.1
	// listen on br-lan
	// port range 20000-29999
	// lifetime max 7200
	// allow 20000-29999 198.51.100.0/24 1024-65535
	// allow 20000-29999 2001:db8:100::/64 1024-65535
	// deny 0-65535 0.0.0.0/0 0-65535
	// upnp on
	// upnp friendly name "portleased"
	// upnp http port 5000
	// upnp notify interval 900
	// upnp secure mode on
	// upnp version 2
	// pcp lifetime min 120
	// max mappings per host 1024
	// max mappings 65536
	// request rate per host 50 burst 200
	// user portleased
	// firewall auto
	// control socket /run/portleased/control
	// status page on
	// status page admin off
	// state file /var/lib/portleased/leases
	// ---
	// portleased.conf:2: unknown directive "lisen"
	// portleased.conf:3: port range: 70000 is not a port (1-65535)
	// portleased.conf: no "listen on" given
}
