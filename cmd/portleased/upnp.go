package main

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/portlease/portlease/gateway"
	"github.com/portlease/portlease/gateway/config"
	"github.com/portlease/portlease/gateway/ssdpsrv"
	"github.com/portlease/portlease/gateway/upnpsrv"
)

// upnpService is the UPnP IGD side of the daemon: the HTTP server of
// descriptions, control and events, and the SSDP responder.
type upnpService struct {
	http   *upnpsrv.Server
	ssdp   *ssdpsrv.Server
	cancel context.CancelFunc
	// ssdpDone reports the end of the SSDP responder, after its byebyes.
	ssdpDone chan error
	log      *slog.Logger
}

// deviceUUID returns a UUID for the root device that stays the same across
// restarts of the same machine (UDA 1.1 §1.1.4: a UDN must not change): a
// name-based UUID (RFC 9562 §5.5, SHA-1) of the machine ID, or of the
// host name when there is none.
func deviceUUID() string {
	seed, err := os.ReadFile("/etc/machine-id")
	if err != nil || len(strings.TrimSpace(string(seed))) == 0 {
		h, _ := os.Hostname()
		seed = []byte(h)
	}
	sum := sha1.Sum(append([]byte("portleased InternetGatewayDevice "), seed...))
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// startUPnP starts the UPnP IGD service on every LAN address: HTTP on
// u.HTTPPort and SSDP on port 1900 of each LAN link. A failure of an HTTP
// server is sent to errc.
func startUPnP(cfg *config.Config, lans []lanAddress, table *gateway.Table, log *slog.Logger, errc chan<- error) (*upnpService, error) {
	u := cfg.UPnP
	uuid := deviceUUID()
	bootID := int(time.Now().Unix() & 0x7fffffff)
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%d", u.FriendlyName, u.Version)
	configID := int(h.Sum32() & 0xffffff) // UDA 1.1 §1.2.2: 0 to 16777215

	server := fmt.Sprintf("%s UPnP/1.1 portleased/0.1", runtime.GOOS)
	var clients []netip.Prefix
	for _, la := range lans {
		clients = append(clients, la.addr.Masked())
	}
	srv, err := upnpsrv.New(upnpsrv.Config{
		Table:             table,
		Logger:            log,
		UUID:              uuid,
		FriendlyName:      u.FriendlyName,
		Version:           u.Version,
		AllowForeign:      !u.SecureMode,
		Clients:           clients,
		ExternalInterface: cfg.ExternalInterface,
		BootID:            bootID,
		ConfigID:          configID,
		Server:            server,
	})
	if err != nil {
		return nil, fmt.Errorf("upnp: %w", err)
	}
	s := &upnpService{http: srv, log: log, ssdpDone: make(chan error, 1)}
	var links []ssdpsrv.Link
	for _, la := range lans {
		addr := netip.AddrPortFrom(la.addr.Addr(), uint16(u.HTTPPort))
		ln, err := net.Listen("tcp4", addr.String())
		if err != nil {
			s.stop(context.Background())
			return nil, fmt.Errorf("upnp: listen on %s (upnp http port %d): %w", addr, u.HTTPPort, err)
		}
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("upnp: HTTP on %s: %w", addr, err)
			}
		}()
		links = append(links, ssdpsrv.Link{Index: la.index, Name: la.ifname, Addr: la.addr.Addr(), Prefix: la.addr.Masked(),
			Location: fmt.Sprintf("http://%s%s", addr, srv.DescriptionPath())})
	}
	// The description names the devices and services, and the UUIDs of the
	// embedded devices: SSDP advertises exactly those.
	devices, services, uuids := srv.Advertisement()
	for typ, id := range uuids {
		if id == uuid { // the root device and its services: Device.UUID
			delete(uuids, typ)
		}
	}
	ssdp, err := ssdpsrv.Listen(ssdpsrv.Config{
		Device: ssdpsrv.Device{
			UUID: uuid, DeviceTypes: devices, ServiceTypes: services, UUIDs: uuids,
			Server: server, BootID: bootID, ConfigID: configID,
			MaxAge: 2 * u.NotifyInterval,
		},
		Links:          links,
		Logger:         log,
		NotifyInterval: u.NotifyInterval,
	})
	if err != nil {
		s.stop(context.Background())
		return nil, fmt.Errorf("upnp: SSDP: %w", err)
	}
	s.ssdp = ssdp
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.ssdpDone <- ssdp.Serve(ctx) }()
	log.Info("serving UPnP IGD", "version", u.Version, "http_port", u.HTTPPort, "friendly_name", u.FriendlyName,
		"secure_mode", u.SecureMode, "uuid", uuid)
	return s, nil
}

// stop sends ssdp:byebye and stops the servers.
func (s *upnpService) stop(ctx context.Context) {
	if s.cancel != nil {
		s.cancel()
	}
	if s.ssdp != nil {
		// Serve sends the byebyes when its context ends; give it the time.
		select {
		case <-time.After(2 * time.Second):
		case err := <-s.ssdpDone:
			if err != nil && !errors.Is(err, context.Canceled) {
				s.log.Debug("SSDP stopped", "err", err)
			}
		}
		_ = s.ssdp.Close()
	}
	if err := s.http.Shutdown(ctx); err != nil {
		s.log.Warn("UPnP requests still in progress at exit", "err", err)
	}
}
