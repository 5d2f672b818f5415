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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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

// upnpConfigID returns CONFIGID.UPNP.ORG (UDA 2.0 §1.2.2: 0 to 16777215)
// of a configuration: a hash of what the descriptions say that the
// configuration chooses, so that it changes exactly when the descriptions
// change (UDA 2.0 §1.2: "CONFIGID.UPNP.ORG ... MUST be changed ... whenever
// the device description or a service description changes").
func upnpConfigID(u config.UPnP) int {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%d", u.FriendlyName, u.Version)
	return int(h.Sum32() & 0xffffff)
}

// listenUPnP opens the HTTP listeners of the UPnP service on every LAN
// address, IPv4 or IPv6, port port. They set SO_REUSEPORT so that a restarted service can
// open its listeners on the same addresses before the old one closes its
// own (the kernel shares the port between sockets of the same user only).
func listenUPnP(lans []lanAddress, port int) ([]net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var lns []net.Listener
	for _, la := range lans {
		addr := netip.AddrPortFrom(la.addr.Addr(), uint16(port))
		network := "tcp4"
		if !addr.Addr().Is4() {
			network = "tcp6"
		}
		ln, err := lc.Listen(context.Background(), network, addr.String())
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("upnp: listen on %s (upnp http port %d): %w", addr, port, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// startUPnP starts the UPnP IGD service on every LAN address, IPv4 (lans)
// and IPv6 (lans6, from upnpAddrs6): HTTP on lns (from listenUPnP, one per
// address of lans then lans6) and SSDP on port 1900 of each LAN link,
// advertising bootID; over IPv6 (FF02::C, FF05::C) on the links of lans6,
// with the Location on the link's first IPv6 address there. The HTTP
// server also serves status, when not nil, at /status (statusPage). A
// failure of an HTTP server is sent to errc. On an error it closes lns.
func startUPnP(cfg *config.Config, lans, lans6 []lanAddress, lns []net.Listener, bootID int, table *gateway.Table, rate upnpsrv.Limiter, latency upnpsrv.Latency, status http.Handler, log *slog.Logger, errc chan<- error) (*upnpService, error) {
	all := append(slices.Clip(lans), lans6...)
	u := cfg.UPnP
	uuid := deviceUUID()
	configID := upnpConfigID(u)

	server := fmt.Sprintf("%s UPnP/1.1 portleased/0.1", runtime.GOOS)
	var clients []netip.Prefix
	for _, la := range all {
		if p := la.addr.Masked(); !slices.Contains(clients, p) {
			clients = append(clients, p)
		}
	}
	srv, err := upnpsrv.New(upnpsrv.Config{
		Table:        table,
		Logger:       log,
		UUID:         uuid,
		FriendlyName: u.FriendlyName,
		Version:      u.Version,
		AllowForeign: !u.SecureMode,
		// Secure mode: a host may open a pinhole for another of its own
		// addresses (the neighbour table), or for another host where
		// the policy's third-party lines allow it.
		Neighbours:        upnpsrv.KernelNeighbours{},
		MayActFor:         func(requester, internal netip.Addr) bool { return table.Policy().MayActFor(requester, internal) },
		Clients:           clients,
		ExternalInterface: cfg.ExternalInterface,
		BootID:            bootID,
		ConfigID:          configID,
		Server:            server,
		// One host cannot hold every connection; the Host header may
		// name the router (upnp hostname).
		MaxConnectionsPerHost: u.ConnectionsPerHost(),
		HostNames:             u.HostNames,
		// SOAP actions count against the host's request rate.
		Limiter: rate,
		Latency: latency,
		// The operator's page, on the LAN listeners only.
		StatusPage: status,
	})
	if err != nil {
		closeAll(lns)
		return nil, fmt.Errorf("upnp: %w", err)
	}
	s := &upnpService{http: srv, log: log, ssdpDone: make(chan error, 1)}
	var links []ssdpsrv.Link
	for i, la := range all {
		addr := netip.AddrPortFrom(la.addr.Addr(), uint16(u.HTTPPort))
		ln := lns[i]
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("upnp: HTTP on %s: %w", addr, err)
			}
		}()
		// SSDP serves a link once per family, on its first address.
		if i >= len(lans) && slices.ContainsFunc(links, func(l ssdpsrv.Link) bool { return l.Index == la.index && !l.Addr.Is4() }) {
			continue
		}
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
		"secure_mode", u.SecureMode, "status_page", status != nil, "uuid", uuid, "boot_id", bootID, "config_id", configID, "listen", listenAttr(all))
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

// upnpRunner keeps the UPnP service in step with the configuration and the
// LAN addresses: it changes secure mode in place, and restarts the service
// for anything the descriptions or the advertisements carry. Its methods
// but externalAddressChanged are called from the daemon's main loop only.
type upnpRunner struct {
	table *gateway.Table
	log   *slog.Logger
	errc  chan<- error
	// rate is the request rate per host of the SOAP actions; it outlives
	// the restarts of the service.
	rate *hostLimiter
	// latency observes the control actions' durations; nil: not.
	latency upnpsrv.Latency

	mu  sync.Mutex   // guards svc against the external address watcher
	svc *upnpService // nil while UPnP is off or no LAN address is served
	// started is what svc was started with.
	started upnpKey
	// bootID is the BOOTID.UPNP.ORG of the last start. Each start
	// advertises a greater one (UDA 2.0 §1.2.2: it "MUST be increased
	// each time a device (re)joins the network"), a restart by SIGHUP
	// included, since the old service said ssdp:byebye.
	bootID int
	onBoot func(bootID int)
	// since is when the daemon started, the status page's uptime.
	since time.Time
}

// upnpKey is what a running service was started with, secure mode aside.
type upnpKey struct {
	enabled  bool
	name     string
	port     int
	interval time.Duration
	version  int
	external string
	lans     string
	lans6    string
	// hostNames and connsPerHost are the HTTP server's, which takes them
	// at start.
	hostNames    string
	connsPerHost int
}

func keyOf(cfg *config.Config, lans, lans6 []lanAddress) upnpKey {
	u := cfg.UPnP
	return upnpKey{enabled: u.Enabled, name: u.FriendlyName, port: u.HTTPPort, interval: u.NotifyInterval,
		version: u.Version, external: cfg.ExternalInterface, lans: fmt.Sprint(lans), lans6: fmt.Sprint(lans6),
		hostNames: strings.Join(u.HostNames, " "), connsPerHost: u.ConnectionsPerHost()}
}

// newUPnPRunner returns a runner whose first start advertises firstBootID,
// and which tells onBoot each BOOTID it advertises (for the state to keep).
func newUPnPRunner(table *gateway.Table, rate *hostLimiter, log *slog.Logger, errc chan<- error, firstBootID int, onBoot func(int)) *upnpRunner {
	return &upnpRunner{table: table, rate: rate, log: log, errc: errc, bootID: firstBootID - 1, onBoot: onBoot, since: time.Now()}
}

// upnpPlan is a change of the UPnP service, prepared so that a reload can
// still be refused: its listeners are open, nothing else has changed.
type upnpPlan struct {
	r       *upnpRunner
	cfg     *config.Config
	lans    []lanAddress
	lans6   []lanAddress // upnpAddrs6
	restart bool
	lns     []net.Listener // the new service's, when it is to run
}

// prepare plans the service cfg and the IPv4 addresses of lans ask for,
// on the IPv6 addresses of upnpAddrs6 too (the one source of them: lans
// may hold IPv6 addresses, PCP's), opening the new HTTP listeners when the
// service is to be restarted. An error (the port is taken) changes nothing.
func (r *upnpRunner) prepare(cfg *config.Config, lans []lanAddress) (*upnpPlan, error) {
	lans = ipv4Only(lans)
	p := &upnpPlan{r: r, cfg: cfg, lans: lans}
	run := cfg.UPnP.Enabled && len(lans) > 0
	if run {
		p.lans6 = upnpAddrs6(cfg)
	}
	if r.svc == nil && !run || r.svc != nil && r.started == keyOf(cfg, lans, p.lans6) {
		return p, nil
	}
	p.restart = true
	if run {
		lns, err := listenUPnP(append(slices.Clip(lans), p.lans6...), cfg.UPnP.HTTPPort)
		if err != nil {
			return nil, err
		}
		p.lns = lns
	}
	return p, nil
}

// commit puts the plan in force: it sets secure mode in place, or stops the
// running service (ssdp:byebye) and starts the new one with the next
// BOOTID. An error leaves UPnP off until the next change asks for it.
func (p *upnpPlan) commit() error {
	r := p.r
	if !p.restart {
		if r.svc != nil {
			r.svc.http.SetAllowForeign(!p.cfg.UPnP.SecureMode)
		}
		return nil
	}
	r.mu.Lock()
	old := r.svc
	r.svc, r.started = nil, upnpKey{}
	r.mu.Unlock()
	if old != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		old.stop(ctx)
		cancel()
		r.log.Info("UPnP IGD stopped")
	}
	if p.lns == nil {
		return nil
	}
	status, err := statusPage(p.cfg, r.table, r.since, r.log)
	if err != nil {
		closeAll(p.lns)
		return err
	}
	r.bootID = (r.bootID + 1) & 0x7fffffff
	r.onBoot(r.bootID)
	svc, err := startUPnP(p.cfg, p.lans, p.lans6, p.lns, r.bootID, r.table, r.rate, r.latency, status, r.log, r.errc)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.svc, r.started = svc, keyOf(p.cfg, p.lans, p.lans6)
	r.mu.Unlock()
	return nil
}

// abort closes what prepare opened, for a reload refused after it.
func (p *upnpPlan) abort() { closeAll(p.lns) }

// apply prepares and commits at once.
func (r *upnpRunner) apply(cfg *config.Config, lans []lanAddress) error {
	p, err := r.prepare(cfg, lans)
	if err != nil {
		return err
	}
	return p.commit()
}

// externalAddressChanged tells the running service's subscribers.
func (r *upnpRunner) externalAddressChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.svc != nil {
		r.svc.http.ExternalAddressChanged()
	}
}

// stop stops the service, at exit.
func (r *upnpRunner) stop(ctx context.Context) {
	r.mu.Lock()
	svc := r.svc
	r.svc = nil
	r.mu.Unlock()
	if svc != nil {
		svc.stop(ctx)
	}
}
