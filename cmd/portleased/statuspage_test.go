package main

import (
	"testing"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
)

// TestStatusPageConfig: "status page off" serves nothing; on, the page is
// served, with or without its admin actions.
func TestStatusPageConfig(t *testing.T) {
	table := gateway.New(gateway.Config{})
	defer table.Close()
	for _, tc := range []struct {
		observe config.Observe
		want    bool
	}{
		{config.Observe{StatusPage: false}, false},
		{config.Observe{StatusPage: true}, true},
		{config.Observe{StatusPage: true, StatusAdmin: true, StatusToken: "0123456789abcdef"}, true},
	} {
		h, err := statusPage(&config.Config{Observe: tc.observe}, table, table.EpochStart(), nil)
		if err != nil || (h != nil) != tc.want {
			t.Errorf("statusPage(%+v) = %v, %v; want a page: %v", tc.observe, h, err, tc.want)
		}
	}
}
