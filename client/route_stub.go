//go:build !linux && !darwin && !freebsd && !openbsd && !windows

package client

import (
	"fmt"
	"runtime"
)

// defaultRoutes would return the IPv4 default routes (see route_linux.go);
// finding them is not implemented on this system: the gateway must be
// given (Config.Gateway, portlease --gateway).
func defaultRoutes(string) ([]route, error) {
	return nil, fmt.Errorf("%w: finding the default gateway is not implemented on %s; give the gateway's address", ErrNoGateway, runtime.GOOS)
}

// defaultRoutes6 is defaultRoutes for IPv6.
func defaultRoutes6(string) ([]route, error) {
	return nil, fmt.Errorf("%w: finding the IPv6 default router is not implemented on %s", ErrNoGateway, runtime.GOOS)
}
