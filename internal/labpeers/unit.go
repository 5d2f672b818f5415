package labpeers

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadServiceCredentials reads User=, AmbientCapabilities=,
// CapabilityBoundingSet= and NoNewPrivileges= from the [Service] section
// of the systemd unit file at path (systemd.exec(5)), for starting
// portleased the way the unit does. A setting given twice takes the later
// value; capability lists accumulate, as systemd's do, and "~" (an
// inverted list) is refused.
func ReadServiceCredentials(path string) (ServiceCredentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return ServiceCredentials{}, fmt.Errorf("labpeers: unit: %w", err)
	}
	defer f.Close()
	var c ServiceCredentials
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section != "[Service]" {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "User":
			c.User = value
		case "AmbientCapabilities", "CapabilityBoundingSet":
			if strings.HasPrefix(value, "~") {
				return c, fmt.Errorf("labpeers: unit %s: %s=%s: inverted lists are not read", path, key, value)
			}
			if key == "AmbientCapabilities" {
				c.Ambient = append(c.Ambient, strings.Fields(value)...)
			} else {
				c.Bounding = append(c.Bounding, strings.Fields(value)...)
			}
		case "NoNewPrivileges":
			c.NoNewPrivileges = value == "yes" || value == "true" || value == "on" || value == "1"
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("labpeers: unit %s: %w", path, err)
	}
	if c.User == "" {
		return c, errors.New("labpeers: unit " + path + ": no User=")
	}
	return c, nil
}

// DefaultServiceCredentials are the settings of dist/systemd/portleased.service
// as issue 11 gives them: User=portleased,
// AmbientCapabilities=CAP_NET_ADMIN, CapabilityBoundingSet=CAP_NET_ADMIN,
// NoNewPrivileges=yes.
func DefaultServiceCredentials() ServiceCredentials {
	return ServiceCredentials{User: ServiceUser, Ambient: []string{"CAP_NET_ADMIN"},
		Bounding: []string{"CAP_NET_ADMIN"}, NoNewPrivileges: true}
}
