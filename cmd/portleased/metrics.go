package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/ifaddr"
)

// metricsPath is where "metrics listen" serves the metrics.
const metricsPath = "/metrics"

// serveMetrics serves h at GET /metrics over HTTP on the address of
// "metrics listen", when set, until the returned stop is called (which
// closes the listener and waits for the scrapes in progress, at most ctx's
// time). The address must be on a LAN link or loopback: one of the WAN link
// (interface), or of no interface, is refused, the line named (the metrics
// tell the lease table's state to whoever may connect, never the WAN side).
//
// The socket is opened after the privilege drop: a port below 1024 needs a
// privilege the daemon gave up, and is refused with a word saying so.
func serveMetrics(file string, cfg *config.Config, h http.Handler, log *slog.Logger) (stop func(ctx context.Context), err error) {
	o := cfg.Observe
	if !o.MetricsListen.IsValid() {
		return func(context.Context) {}, nil
	}
	where := fmt.Sprintf("%s:%d: metrics listen %s", file, o.MetricsLine, o.MetricsListen)
	ifc, err := ifaddr.ByAddress(o.MetricsListen.Addr())
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: no interface has that address (name an address of a LAN link or loopback)", where)
	case ifc.Name == cfg.ExternalInterface:
		return nil, fmt.Errorf("%s: the address is on the WAN link %s; metrics are served on a LAN link or loopback only", where, ifc.Name)
	}
	ln, err := net.Listen("tcp", o.MetricsListen.String())
	if err != nil {
		if errors.Is(err, syscall.EACCES) && o.MetricsListen.Port() < 1024 {
			return nil, fmt.Errorf("%s: %w (a port below 1024 needs a privilege portleased gives up at start: choose one above 1023, such as 9380)", where, err)
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	mux := http.NewServeMux()
	mux.Handle(metricsPath, h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics no longer served", "listen", o.MetricsListen, "err", err)
		}
	}()
	log.Info("serving metrics", "listen", o.MetricsListen, "path", metricsPath, "interface", ifc.Name)
	return func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}
