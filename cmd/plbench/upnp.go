package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/portlease/portlease/upnp"
)

// upnpDescriptionTimeout is how long the description may take to arrive.
const upnpDescriptionTimeout = 10 * time.Second

// upnpDescriptionText is the NewPortMappingDescription of every mapping.
const upnpDescriptionText = "plbench"

// upnpClient is one UPnP control point: its own HTTP transport holding one
// keep-alive connection, and its own request body buffer.
type upnpClient struct {
	cfg      *config
	hc       *http.Client
	control  string // the control URL
	service  string // the service type
	internal string // NewInternalClient
	body     []byte
	rd       bytes.Reader
}

// runUPnP runs the UPnP benchmark of cfg.
func runUPnP(ctx context.Context, cfg config, progress io.Writer) (*result, error) {
	svc, err := findService(ctx, cfg.url)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnreachable, err)
	}
	internal := cfg.internal
	if internal == "" {
		if internal, err = localAddr(ctx, svc.ControlURL); err != nil {
			return nil, fmt.Errorf("%w: %v", errUnreachable, err)
		}
	}
	clients := make([]client, cfg.clients)
	for k := range clients {
		tr := &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: cfg.timeout * time.Duration(cfg.tries)}).DialContext,
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		}
		defer tr.CloseIdleConnections()
		clients[k] = &upnpClient{
			cfg:      &cfg,
			hc:       &http.Client{Transport: tr, Timeout: cfg.timeout * time.Duration(cfg.tries)},
			control:  svc.ControlURL.String(),
			service:  svc.ServiceType,
			internal: internal,
		}
	}
	r := newRunner(&cfg)
	reached := r.run(ctx, clients, progress)
	res := r.result()
	if !reached {
		return res, fmt.Errorf("%w: no answer from %v to the first request of any client", errUnreachable, svc.ControlURL)
	}
	return res, nil
}

// findService reads the device description at location and returns its
// best WAN connection service.
func findService(ctx context.Context, location string) (upnp.ConnectionService, error) {
	loc, err := url.Parse(location)
	if err != nil {
		return upnp.ConnectionService{}, fmt.Errorf("-url: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, upnpDescriptionTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
	if err != nil {
		return upnp.ConnectionService{}, fmt.Errorf("-url: %w", err)
	}
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return upnp.ConnectionService{}, fmt.Errorf("description: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return upnp.ConnectionService{}, fmt.Errorf("description %s: HTTP status %s", location, resp.Status)
	}
	desc, err := upnp.ParseDescription(resp.Body)
	if err != nil {
		return upnp.ConnectionService{}, fmt.Errorf("description %s: %w", location, err)
	}
	svcs := desc.ConnectionServices(loc)
	if len(svcs) == 0 {
		return upnp.ConnectionService{}, fmt.Errorf("description %s: no WANIPConnection or WANPPPConnection service", location)
	}
	return svcs[0], nil
}

// localAddr returns the local address of a TCP connection to the host of
// u: the address the gateway sees, which its secure mode wants as the
// internal client.
func localAddr(ctx context.Context, u *url.URL) (string, error) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, upnpDescriptionTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return "", fmt.Errorf("control URL: %w", err)
	}
	defer conn.Close()
	ap := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	return ap.Addr().Unmap().WithZone("").String(), nil
}

// do performs request i: AddPortMapping for map and renew, DeletePortMapping
// for delete. The envelope is written into the client's reused buffer.
func (c *upnpClient) do(i int) (kind string, answered bool, latency time.Duration) {
	tcp, port := c.cfg.request(i)
	proto := "UDP"
	if tcp {
		proto = "TCP"
	}
	var act upnp.Action
	if c.cfg.op == opDelete {
		act = upnp.DeletePortMapping(c.service, "", port, proto)
	} else {
		act = upnp.AddPortMapping(c.service, upnp.PortMapping{
			ExternalPort:   port,
			Protocol:       proto,
			InternalPort:   port,
			InternalClient: c.internal,
			Enabled:        true,
			Description:    upnpDescriptionText,
			LeaseDuration:  c.cfg.lifetime,
		})
	}
	c.body = act.AppendEnvelope(c.body[:0])
	c.rd.Reset(c.body)
	req, err := http.NewRequest(http.MethodPost, c.control, &c.rd)
	if err != nil {
		return kindHTTP, false, 0
	}
	req.ContentLength = int64(len(c.body))
	req.Header.Set("Content-Type", `text/xml; charset="utf-8"`)
	req.Header.Set("SOAPAction", act.SOAPAction())
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		if isTimeout(err) {
			return kindTimeout, false, 0
		}
		return kindHTTP, false, 0
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body) // drained, the connection is kept alive
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError {
		return kindHTTP, true, time.Since(start)
	}
	_, err = upnp.ParseResponse(resp.Body, act.Name)
	latency = time.Since(start)
	var fault *upnp.Fault
	switch {
	case err == nil:
		return "", true, latency
	case errors.As(err, &fault):
		return "upnp " + strconv.Itoa(fault.Code), true, latency
	case isTimeout(err):
		return kindTimeout, false, 0
	}
	return kindMalformed, true, latency
}

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}
