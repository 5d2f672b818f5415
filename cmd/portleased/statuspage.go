package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/statuspage"
)

// statusPage returns the status page the UPnP HTTP server serves at
// /status on the LAN addresses, or nil with "status page off". started is
// the daemon's start, for its uptime.
func statusPage(cfg *config.Config, table *gateway.Table, started time.Time, log *slog.Logger) (http.Handler, error) {
	o := cfg.Observe
	if !o.StatusPage {
		return nil, nil
	}
	h, err := statuspage.New(statuspage.Config{
		Table: table, Logger: log, Started: started,
		Admin: o.StatusAdmin, Token: o.StatusToken,
	})
	if err != nil {
		return nil, fmt.Errorf("status page: %w", err)
	}
	return h, nil
}
