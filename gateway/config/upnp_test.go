package config

import "testing"

func TestUPnPPrivilegedPort(t *testing.T) {
	for _, tt := range []struct {
		port int
		want bool
	}{{80, true}, {1023, true}, {1024, false}, {DefaultHTTPPort, false}} {
		if got := (UPnP{HTTPPort: tt.port}).PrivilegedPort(); got != tt.want {
			t.Errorf("UPnP{HTTPPort: %d}.PrivilegedPort() = %v; want %v", tt.port, got, tt.want)
		}
	}
}
