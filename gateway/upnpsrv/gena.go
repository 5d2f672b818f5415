package upnpsrv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Eventing limits (UDA 1.1 §4).
const (
	// maxSubscriptionTimeout is the longest subscription granted, and the
	// duration of one that asks for none or for "infinite" (§4.1.2: "a
	// minimum of 1800 seconds is recommended").
	maxSubscriptionTimeout = 1800 * time.Second
	// notifyTimeout bounds the delivery of one event message.
	notifyTimeout = 5 * time.Second
	// minNotifyInterval is the shortest time between two event messages to
	// one subscriber: changes in a burst are coalesced into one message.
	minNotifyInterval = 200 * time.Millisecond
	// maxNotifyConcurrency bounds the event messages in flight at once.
	maxNotifyConcurrency = 8
	// maxNotifyFailures is how many deliveries in a row may fail before
	// the subscription is dropped.
	maxNotifyFailures = 3
	// maxCallbacks bounds the URLs of a CALLBACK header.
	maxCallbacks = 4
)

// subscription is one control point's subscription to one service's events
// (UDA 1.1 §4.1).
type subscription struct {
	sid      string
	svc      *service
	client   netip.Addr
	callback string // an http URL whose host is client
	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	expires  time.Time // guarded by Server.mu
}

// end stops the subscription's delivery.
func (sub *subscription) end() { sub.stopOnce.Do(func() { close(sub.stop) }) }

// poke asks for an event message with what changed.
func (sub *subscription) poke() {
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// wanIPEvented are the evented variables of WANIPConnection (its state
// variables with sendEvents yes: PossibleConnectionTypes, ConnectionStatus,
// ExternalIPAddress, PortMappingNumberOfEntries).
func (s *Server) wanIPEvented() []property {
	return []property{
		{"PossibleConnectionTypes", "IP_Routed"},
		{"ConnectionStatus", s.connectionStatus()},
		{"ExternalIPAddress", s.externalAddress()},
		{"PortMappingNumberOfEntries", strconv.Itoa(min(s.table.Len(), 0xFFFF))},
	}
}

// commonEvented is the evented variable of WANCommonInterfaceConfig:1,
// PhysicalLinkStatus.
func (s *Server) commonEvented() []property {
	return []property{{"PhysicalLinkStatus", s.physicalLinkStatus()}}
}

// l3fEvented is the evented variable of Layer3Forwarding:1,
// DefaultConnectionService.
func (s *Server) l3fEvented() []property {
	return []property{{"DefaultConnectionService", s.defaultConnectionService()}}
}

// event serves a service's event subscription URL (UDA 1.1 §4.1).
func (s *Server) event(w http.ResponseWriter, r *http.Request, svc *service, client netip.Addr) {
	switch r.Method {
	case "SUBSCRIBE":
		s.subscribe(w, r, svc, client)
	case "UNSUBSCRIBE":
		s.unsubscribe(w, r, svc, client)
	default:
		w.Header().Set("Allow", "SUBSCRIBE, UNSUBSCRIBE")
		httpError(w, http.StatusMethodNotAllowed)
	}
}

// subscribe serves SUBSCRIBE (UDA 1.1 §4.1.2 and §4.1.3):
//
//   - a subscription: CALLBACK and NT: upnp:event, answered with SID and
//     TIMEOUT, then the initial event message (SEQ 0) holding every evented
//     variable. 412 Precondition Failed without a CALLBACK, or an NT other
//     than upnp:event. 412 too when a CALLBACK URL is not an http URL whose
//     host is the subscriber's own address, written as an IP address: event
//     messages go only to the host that asked for them (CallStranger,
//     CVE-2020-12695). 503 when the subscriptions are at their limit
//     (§4.1.2: "5xx … if a publisher is not able to accept a subscription").
//   - a renewal: SID alone, from the subscriber's address; 412 for an
//     unknown SID, 400 Bad Request for SID with CALLBACK or NT.
//
// TIMEOUT: Second-N asks for N seconds, capped at 1800, as is
// Second-infinite or no TIMEOUT at all.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, svc *service, client netip.Addr) {
	sid, callback, nt := r.Header.Get("SID"), r.Header.Get("CALLBACK"), r.Header.Get("NT")
	timeout := subscriptionTimeout(r.Header.Get("TIMEOUT"))
	if sid != "" {
		if callback != "" || nt != "" {
			httpError(w, http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		sub, ok := s.subs[sid]
		if ok && sub.client == client && sub.svc == svc {
			sub.expires = time.Now().Add(timeout)
		}
		s.mu.Unlock()
		if !ok || sub.client != client || sub.svc != svc {
			s.log.Debug("refused renewal: unknown subscription", "client", client, "sid", sid)
			httpError(w, http.StatusPreconditionFailed)
			return
		}
		writeSubscribed(w, sid, timeout)
		return
	}
	if nt != "upnp:event" || callback == "" {
		s.log.Debug("refused subscription: no CALLBACK or NT upnp:event", "client", client, "nt", nt)
		httpError(w, http.StatusPreconditionFailed)
		return
	}
	cb, err := parseCallback(callback, client)
	if err != nil {
		s.log.Debug("refused subscription", "client", client, "callback", callback, "err", err)
		httpError(w, http.StatusPreconditionFailed)
		return
	}
	sub := &subscription{
		sid:      "uuid:" + newUUID(),
		svc:      svc,
		client:   client,
		callback: cb,
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		expires:  time.Now().Add(timeout),
	}
	perClient := min(s.cfg.MaxSubscriptions, max(4, s.cfg.MaxSubscriptions/4))
	s.mu.Lock()
	if s.closed || len(s.subs) >= s.cfg.MaxSubscriptions || s.perClient[client] >= perClient {
		n := len(s.subs)
		s.mu.Unlock()
		s.log.Debug("refused subscription: too many", "client", client, "subscriptions", n)
		httpError(w, http.StatusServiceUnavailable)
		return
	}
	s.subs[sub.sid] = sub
	s.perClient[client]++
	s.startWatchLocked()
	s.wg.Add(1)
	s.mu.Unlock()
	s.log.Debug("subscribed", "client", client, "service", svc.name, "sid", sub.sid, "callback", cb, "timeout", timeout)
	writeSubscribed(w, sub.sid, timeout)
	// §4.2.1: the initial event message follows the response.
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go s.deliver(sub)
}

// writeSubscribed answers a subscription or renewal (UDA 1.1 §4.1.2).
func writeSubscribed(w http.ResponseWriter, sid string, timeout time.Duration) {
	h := w.Header()
	h["SID"] = []string{sid}
	h["TIMEOUT"] = []string{"Second-" + strconv.Itoa(int(timeout/time.Second))}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// subscriptionTimeout reads a TIMEOUT header, "Second-N" or
// "Second-infinite" (UDA 1.1 §4.1.2).
func subscriptionTimeout(v string) time.Duration {
	v = strings.TrimSpace(v)
	if len(v) < len("Second-") || !strings.EqualFold(v[:len("Second-")], "Second-") {
		return maxSubscriptionTimeout
	}
	n, err := strconv.ParseUint(v[len("Second-"):], 10, 32)
	if err != nil || n == 0 || time.Duration(n) > maxSubscriptionTimeout/time.Second {
		return maxSubscriptionTimeout
	}
	return time.Duration(n) * time.Second
}

// parseCallback reads a CALLBACK header, one or more "<URL>" (UDA 1.1
// §4.1.2), and returns the first URL. Every URL must be http, without user
// information, with an IP address equal to client as its host; anything
// else is refused whole, since a publisher that sends event messages where
// a subscriber says can be turned against third parties (CallStranger,
// CVE-2020-12695).
func parseCallback(v string, client netip.Addr) (string, error) {
	var first string
	n := 0
	rest := strings.TrimSpace(v)
	for rest != "" {
		if rest[0] != '<' {
			return "", errors.New("upnpsrv: CALLBACK is not a list of <URL>")
		}
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return "", errors.New("upnpsrv: CALLBACK is not a list of <URL>")
		}
		raw := rest[1:end]
		rest = strings.TrimSpace(rest[end+1:])
		if n++; n > maxCallbacks {
			return "", errors.New("upnpsrv: too many CALLBACK URLs")
		}
		u, err := url.Parse(raw)
		if err != nil || !strings.EqualFold(u.Scheme, "http") || u.User != nil || u.Opaque != "" {
			return "", fmt.Errorf("upnpsrv: callback %q is not an http URL", raw)
		}
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(u.Hostname(), "["), "]"))
		if err != nil || a.Unmap().WithZone("") != client {
			return "", fmt.Errorf("upnpsrv: callback %q does not name the subscriber %v", raw, client)
		}
		port := 80
		if p := u.Port(); p != "" {
			if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
				return "", fmt.Errorf("upnpsrv: callback %q port", raw)
			}
		}
		if first == "" {
			target := url.URL{Scheme: "http", Host: netip.AddrPortFrom(client, uint16(port)).String(),
				Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
			first = target.String()
		}
	}
	if first == "" {
		return "", errors.New("upnpsrv: CALLBACK without a URL")
	}
	return first, nil
}

// unsubscribe serves UNSUBSCRIBE (UDA 1.1 §4.1.4): 412 without a SID or
// for an unknown one, 400 for SID with CALLBACK or NT.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request, svc *service, client netip.Addr) {
	sid := r.Header.Get("SID")
	if sid != "" && (r.Header.Get("CALLBACK") != "" || r.Header.Get("NT") != "") {
		httpError(w, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	sub, ok := s.subs[sid]
	ok = ok && sub.client == client && sub.svc == svc
	if ok {
		s.removeLocked(sub)
	}
	s.mu.Unlock()
	if !ok {
		httpError(w, http.StatusPreconditionFailed)
		return
	}
	s.log.Debug("unsubscribed", "client", client, "sid", sid)
	h := w.Header()
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// removeLocked ends sub and forgets it. s.mu must be held.
func (s *Server) removeLocked(sub *subscription) {
	if s.subs[sub.sid] != sub {
		return
	}
	delete(s.subs, sub.sid)
	if s.perClient[sub.client]--; s.perClient[sub.client] <= 0 {
		delete(s.perClient, sub.client)
	}
	sub.end()
}

// deliver sends sub's event messages (UDA 1.1 §4.2) until it ends, expires
// or fails maxNotifyFailures times in a row: the initial message with every
// evented variable, then one with the variables that changed whenever
// something may have, at most one every minNotifyInterval.
func (s *Server) deliver(sub *subscription) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.removeLocked(sub)
		s.mu.Unlock()
	}()
	expiry := time.NewTimer(s.untilExpiry(sub))
	defer expiry.Stop()
	hold := time.NewTimer(0)
	defer hold.Stop()
	<-hold.C
	holding := false

	sent := map[string]string{}
	var seq uint32
	failures := 0
	pending := true
	for {
		select {
		case <-sub.stop:
			return
		default:
		}
		if pending && !holding {
			pending = false
			var props []property
			for _, p := range sub.svc.evented(s) {
				if v, ok := sent[p.name]; !ok || v != p.value {
					props = append(props, p)
				}
			}
			if len(props) > 0 {
				err := s.notify(sub, seq, props)
				// §4.2.1: SEQ counts the messages sent, wrapping to 1.
				if seq++; seq == 0 {
					seq = 1
				}
				if err != nil && s.notifyCtx.Err() != nil {
					return // Shutdown
				}
				if err != nil {
					failures++
					s.log.Debug("event not delivered", "client", sub.client, "sid", sub.sid, "failures", failures, "err", err)
					if failures >= maxNotifyFailures {
						s.log.Info("subscription dropped: events not delivered", "client", sub.client, "sid", sub.sid)
						return
					}
				} else {
					failures = 0
					for _, p := range props {
						sent[p.name] = p.value
					}
				}
				hold.Reset(minNotifyInterval)
				holding = true
			}
		}
		select {
		case <-sub.stop:
			return
		case <-sub.wake:
			pending = true
		case <-hold.C:
			holding = false
		case <-expiry.C:
			if d := s.untilExpiry(sub); d > 0 {
				expiry.Reset(d)
				continue
			}
			s.log.Debug("subscription expired", "client", sub.client, "sid", sub.sid)
			return
		}
	}
}

func (s *Server) untilExpiry(sub *subscription) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(sub.expires)
}

// notify sends one event message (UDA 1.1 §4.2.1):
//
//	NOTIFY delivery-path HTTP/1.1
//	HOST: delivery-host:port
//	CONTENT-TYPE: text/xml; charset="utf-8"
//	NT: upnp:event
//	NTS: upnp:propchange
//	SID: uuid:subscription-UUID
//	SEQ: event-key
//
//	<?xml version="1.0"?>
//	<e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0">
//	<e:property><variableName>new value</variableName></e:property>…
//	</e:propertyset>
func (s *Server) notify(sub *subscription, seq uint32, props []property) error {
	body := []byte("<?xml version=\"1.0\"?>\r\n<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">")
	for _, p := range props {
		body = append(body, "<e:property>"...)
		body = appendElement(body, p.name, p.value)
		body = append(body, "</e:property>"...)
	}
	body = append(body, "</e:propertyset>\r\n"...)

	ctx, cancel := context.WithTimeout(s.notifyCtx, notifyTimeout)
	defer cancel()
	select {
	case s.notifySem <- struct{}{}:
		defer func() { <-s.notifySem }()
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.stop:
		return errors.New("upnpsrv: subscription ended")
	}
	req, err := http.NewRequestWithContext(ctx, "NOTIFY", sub.callback, bytes.NewReader(body))
	if err != nil {
		return err
	}
	h := req.Header
	h.Set("Content-Type", `text/xml; charset="utf-8"`)
	h["NT"] = []string{"upnp:event"}
	h["NTS"] = []string{"upnp:propchange"}
	h["SID"] = []string{sub.sid}
	h["SEQ"] = []string{strconv.FormatUint(uint64(seq), 10)}
	resp, err := s.notifier.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upnpsrv: subscriber answered %s", resp.Status)
	}
	return nil
}

// dialNotify opens a connection for an event message: to an IP address
// only (parseCallback made sure it is the subscriber's), through
// Config.Dial when set.
func (s *Server) dialNotify(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return nil, fmt.Errorf("upnpsrv: event callback %q is not an address", addr)
	}
	if s.cfg.Dial != nil {
		return s.cfg.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// wakeAll asks every subscription for an event message with what changed.
func (s *Server) wakeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		sub.poke()
	}
}

// tableChanged is the table's Watch callback: it must not block.
func (s *Server) tableChanged() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// startWatchLocked starts following the table's changes, at the first
// subscription. s.mu must be held.
func (s *Server) startWatchLocked() {
	if s.watching || s.closed {
		return
	}
	s.watching = true
	s.stopWatch = s.table.Watch(s.tableChanged)
	s.wg.Add(1)
	go s.follow()
}

// follow wakes the subscriptions whenever the table changes, until Shutdown.
func (s *Server) follow() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.changed:
			s.wakeAll()
		}
	}
}
