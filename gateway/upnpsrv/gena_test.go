package upnpsrv

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// The event tests subscribe from 127.0.0.1 with callbacks on 127.0.0.1:
// every event message stays on the loopback interface.

const (
	loopback  = "127.0.0.1"
	evtIP     = "/evt/IPConn"
	evtCommon = "/evt/CmnIfCfg"
	evtL3F    = "/evt/L3F"
	// eventWait bounds the wait for an event message; tests fail only
	// when none comes at all.
	eventWait = 10 * time.Second
)

// notification is an event message a subscriber received.
type notification struct {
	method, nt, nts, sid string
	seq                  int
	vars                 map[string]string
}

// propertySet is the body of an event message (UDA 1.1 §4.2.1).
type propertySet struct {
	XMLName xml.Name `xml:"urn:schemas-upnp-org:event-1-0 propertyset"`
	Props   []struct {
		Vars []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	} `xml:"urn:schemas-upnp-org:event-1-0 property"`
}

// subscriber is a control point's event receiver on 127.0.0.1 that
// answers status to every message.
type subscriber struct {
	url    string
	events chan notification
}

func newSubscriber(t *testing.T, status int) *subscriber {
	t.Helper()
	sub := &subscriber{events: make(chan notification, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ps propertySet
		n := notification{method: r.Method, nt: r.Header.Get("NT"), nts: r.Header.Get("NTS"), sid: r.Header.Get("SID"), vars: map[string]string{}}
		n.seq, _ = strconv.Atoi(r.Header.Get("SEQ"))
		if err := xml.Unmarshal(body, &ps); err != nil {
			t.Errorf("event message %q: %v", body, err)
		}
		for _, p := range ps.Props {
			for _, v := range p.Vars {
				n.vars[v.XMLName.Local] = v.Value
			}
		}
		select {
		case sub.events <- n:
		default:
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	sub.url = srv.URL + "/events"
	return sub
}

// next returns the next event message, failing the test when none comes.
func (sub *subscriber) next(t *testing.T) notification {
	t.Helper()
	select {
	case n := <-sub.events:
		return n
	case <-time.After(eventWait):
		t.Fatal("no event message")
		return notification{}
	}
}

// until returns the first event message that has name = value, checking
// that SEQ goes up one by one from after.
func (sub *subscriber) until(t *testing.T, after int, name, value string) notification {
	t.Helper()
	for {
		n := sub.next(t)
		if n.seq != after+1 {
			t.Fatalf("SEQ %d after %d", n.seq, after)
		}
		after = n.seq
		if n.vars[name] == value {
			return n
		}
	}
}

// gena sends a SUBSCRIBE or UNSUBSCRIBE from client to the handler.
func gena(s *Server, client, method, path string, header map[string]string) *httptest.ResponseRecorder {
	h := http.Header{}
	for k, v := range header {
		h.Set(k, v)
	}
	return serve(s, client, method, path, h, nil)
}

// header returns a response header as a client reads it: the server writes
// GENA's names in upper case, as UDA 1.1 §4.1.2 does.
func header(w *httptest.ResponseRecorder, name string) string {
	for k, v := range w.Header() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func subscribe(t *testing.T, s *Server, path, callback string) string {
	t.Helper()
	w := gena(s, loopback, "SUBSCRIBE", path, map[string]string{"CALLBACK": "<" + callback + ">", "NT": "upnp:event", "TIMEOUT": "Second-300"})
	sid := header(w, "SID")
	if w.Code != http.StatusOK || !strings.HasPrefix(sid, "uuid:") || header(w, "TIMEOUT") != "Second-300" {
		t.Fatalf("SUBSCRIBE: %d %v", w.Code, w.Header())
	}
	return sid
}

func TestEvents(t *testing.T) {
	for _, c := range cores() {
		t.Run(c.name, func(t *testing.T) {
			table := newTable(t, gateway.Config{})
			cr := c.wrap(table)
			s := startServer(t, Config{}, table, cr)
			sub := newSubscriber(t, http.StatusOK)
			sid := subscribe(t, s, evtIP, sub.url)

			// UDA 1.1 §4.2.1: the initial event message holds every evented
			// variable, with SEQ 0.
			n := sub.next(t)
			want := map[string]string{"PossibleConnectionTypes": "IP_Routed", "ConnectionStatus": "Connected",
				"ExternalIPAddress": extAddr, "PortMappingNumberOfEntries": "0"}
			if n.method != "NOTIFY" || n.nt != "upnp:event" || n.nts != "upnp:propchange" || n.sid != sid || n.seq != 0 || len(n.vars) != len(want) {
				t.Fatalf("initial event %+v", n)
			}
			for k, v := range want {
				if n.vars[k] != v {
					t.Errorf("initial %s = %q; want %q", k, n.vars[k], v)
				}
			}

			// A mapping made over UPnP.
			mustCall(t, s, loopback, ctlIP, add(8080, "TCP", 8080, loopback, 600))
			n = sub.until(t, 0, "PortMappingNumberOfEntries", "1")
			if _, ok := n.vars["ExternalIPAddress"]; ok {
				t.Errorf("event %+v carries a variable that did not change", n)
			}
			seq := n.seq

			// A burst of them is coalesced; the last value arrives.
			for i := range 20 {
				mustCall(t, s, loopback, ctlIP, add(uint16(9000+i), "UDP", uint16(9000+i), loopback, 600))
			}
			seq = sub.until(t, seq, "PortMappingNumberOfEntries", "21").seq

			// A mapping made by another front-end (NAT-PMP) through the
			// table.
			if _, err := cr.Map(context.Background(), gateway.MapRequest{Protocol: gateway.TCP, Internal: netip.MustParseAddrPort(hostB + ":5000"),
				Lifetime: time.Hour, Origin: gateway.OriginNATPMP}); err != nil {
				t.Fatal(err)
			}
			seq = sub.until(t, seq, "PortMappingNumberOfEntries", "22").seq

			// The external address goes away.
			table.SetExternalAddress(netip.Addr{})
			s.ExternalAddressChanged()
			n = sub.until(t, seq, "ConnectionStatus", "Disconnected")
			if n.vars["ExternalIPAddress"] != "" {
				t.Errorf("event %+v; want ExternalIPAddress empty", n)
			}
		})
	}
}

func TestEventsOfEachService(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	for _, tt := range []struct {
		path, name, value string
	}{
		{evtIP, "ExternalIPAddress", extAddr},
		{evtCommon, "PhysicalLinkStatus", "Up"},
		{evtL3F, "DefaultConnectionService", s.defaultConnectionService()},
	} {
		sub := newSubscriber(t, http.StatusOK)
		subscribe(t, s, tt.path, sub.url)
		if n := sub.next(t); n.vars[tt.name] != tt.value {
			t.Errorf("initial event of %s: %+v; want %s %q", tt.path, n, tt.name, tt.value)
		}
	}
}

func TestSubscribeRequests(t *testing.T) {
	s := startServer(t, Config{MaxSubscriptions: 2}, nil, nil)
	sub := newSubscriber(t, http.StatusOK)
	sid := subscribe(t, s, evtIP, sub.url)
	port := strings.TrimPrefix(sub.url[strings.LastIndexByte(sub.url, ':'):], ":")
	port = port[:strings.IndexByte(port, '/')]
	tests := []struct {
		name   string
		client string
		method string
		path   string
		header map[string]string
		code   int
	}{
		{"renew", loopback, "SUBSCRIBE", evtIP, map[string]string{"SID": sid, "TIMEOUT": "Second-60"}, 200},
		{"renew without TIMEOUT", loopback, "SUBSCRIBE", evtIP, map[string]string{"SID": sid}, 200},
		{"renew with NT", loopback, "SUBSCRIBE", evtIP, map[string]string{"SID": sid, "NT": "upnp:event"}, 400},
		{"renew with CALLBACK", loopback, "SUBSCRIBE", evtIP, map[string]string{"SID": sid, "CALLBACK": "<" + sub.url + ">"}, 400},
		{"renew unknown", loopback, "SUBSCRIBE", evtIP, map[string]string{"SID": "uuid:" + testUUID}, 412},
		{"renew from another host", "127.0.0.2", "SUBSCRIBE", evtIP, map[string]string{"SID": sid}, 412},
		{"renew at another service", loopback, "SUBSCRIBE", evtCommon, map[string]string{"SID": sid}, 412},
		{"no CALLBACK", loopback, "SUBSCRIBE", evtIP, map[string]string{"NT": "upnp:event"}, 412},
		{"no NT", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<" + sub.url + ">"}, 412},
		{"NT other", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<" + sub.url + ">", "NT": "ssdp:all"}, 412},
		// CallStranger (CVE-2020-12695): callbacks only to the subscriber.
		{"callback another host", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<http://127.0.0.2:" + port + "/>", "NT": "upnp:event"}, 412},
		{"callback outside the LAN", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<http://192.0.2.1:80/evil>", "NT": "upnp:event"}, 412},
		{"callback a name", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<http://localhost:" + port + "/>", "NT": "upnp:event"}, 412},
		{"callback own, then another host", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<" + sub.url + "><http://192.0.2.1/>", "NT": "upnp:event"}, 412},
		{"callback https", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<https://127.0.0.1:" + port + "/>", "NT": "upnp:event"}, 412},
		{"callback with user", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<http://u@127.0.0.1:" + port + "/>", "NT": "upnp:event"}, 412},
		{"callback not in brackets", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": sub.url, "NT": "upnp:event"}, 412},
		{"callback port 0", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<http://127.0.0.1:0/>", "NT": "upnp:event"}, 412},
		{"callback mapped IPv4", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<http://[::ffff:127.0.0.1]:" + port + "/x>", "NT": "upnp:event"}, 200},
		{"one too many", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<" + sub.url + ">", "NT": "upnp:event"}, 503},
		{"unsubscribe with NT", loopback, "UNSUBSCRIBE", evtIP, map[string]string{"SID": sid, "NT": "upnp:event"}, 400},
		{"unsubscribe from another host", "127.0.0.2", "UNSUBSCRIBE", evtIP, map[string]string{"SID": sid}, 412},
		{"unsubscribe", loopback, "UNSUBSCRIBE", evtIP, map[string]string{"SID": sid}, 200},
		{"unsubscribe again", loopback, "UNSUBSCRIBE", evtIP, map[string]string{"SID": sid}, 412},
		{"unsubscribe without SID", loopback, "UNSUBSCRIBE", evtIP, nil, 412},
		{"renew after unsubscribe", loopback, "SUBSCRIBE", evtIP, map[string]string{"SID": sid}, 412},
		{"subscribe again", loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<" + sub.url + ">", "NT": "upnp:event", "TIMEOUT": "Second-infinite"}, 200},
		{"other method", loopback, "NOTIFY", evtIP, nil, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := gena(s, tt.client, tt.method, tt.path, tt.header)
			if w.Code != tt.code {
				t.Fatalf("%s %v: %d; want %d", tt.method, tt.header, w.Code, tt.code)
			}
			if tt.method == "SUBSCRIBE" && w.Code == 200 {
				if to := header(w, "TIMEOUT"); to != "Second-1800" && to != "Second-60" && to != "Second-300" {
					t.Errorf("TIMEOUT %q", to)
				}
			}
		})
	}
}

func TestSubscriptionTimeout(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"Second-300", 300 * time.Second},
		{"second-1", time.Second},
		{" Second-1800 ", 1800 * time.Second},
		{"Second-1801", 1800 * time.Second},
		{"Second-infinite", 1800 * time.Second},
		{"Second-0", 1800 * time.Second},
		{"Second--5", 1800 * time.Second},
		{"Second-99999999999999999999", 1800 * time.Second},
		{"", 1800 * time.Second},
		{"Minute-5", 1800 * time.Second},
	} {
		if got := subscriptionTimeout(tt.in); got != tt.want {
			t.Errorf("subscriptionTimeout(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// waitGone waits until sid is no longer subscribed, failing the test after
// eventWait.
func waitGone(t *testing.T, s *Server, sid string) {
	t.Helper()
	deadline := time.Now().Add(eventWait)
	for {
		s.mu.Lock()
		_, ok := s.subs[sid]
		s.mu.Unlock()
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription %s still there", sid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailingSubscriberDropped: a subscriber that refuses three event
// messages in a row loses its subscription.
func TestFailingSubscriberDropped(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	sub := newSubscriber(t, http.StatusInternalServerError)
	sid := subscribe(t, s, evtIP, sub.url)
	sub.next(t)
	for i := range maxNotifyFailures - 1 {
		mustCall(t, s, loopback, ctlIP, add(uint16(8000+i), "TCP", uint16(8000+i), loopback, 60))
		sub.next(t)
	}
	waitGone(t, s, sid)
	if w := gena(s, loopback, "SUBSCRIBE", evtIP, map[string]string{"SID": sid}); w.Code != http.StatusPreconditionFailed {
		t.Errorf("renewal of a dropped subscription: %d; want 412", w.Code)
	}
}

// TestUnreachableSubscriberDropped: a callback where nobody listens.
func TestUnreachableSubscriberDropped(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	sid := subscribe(t, s, evtIP, "http://127.0.0.1:1/nobody")
	deadline := time.Now().Add(eventWait)
	for i := 0; ; i++ {
		s.mu.Lock()
		_, ok := s.subs[sid]
		s.mu.Unlock()
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription %s still there", sid)
		}
		// Something to tell, each time.
		mustCall(t, s, loopback, ctlIP, add(uint16(8000+i), "TCP", uint16(8000+i), loopback, 60))
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSubscriptionExpires: a subscription that is not renewed ends.
func TestSubscriptionExpires(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	sub := newSubscriber(t, http.StatusOK)
	w := gena(s, loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<" + sub.url + ">", "NT": "upnp:event", "TIMEOUT": "Second-1"})
	if w.Code != http.StatusOK || header(w, "TIMEOUT") != "Second-1" {
		t.Fatalf("SUBSCRIBE: %d %v", w.Code, w.Header())
	}
	sub.next(t)
	waitGone(t, s, header(w, "SID"))
}

// TestSubscribeAfterShutdown: no subscription outlives the server.
func TestSubscribeAfterShutdown(t *testing.T) {
	s := startServer(t, Config{}, nil, nil)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, http.StatusOK)
	if w := gena(s, loopback, "SUBSCRIBE", evtIP, map[string]string{"CALLBACK": "<" + sub.url + ">", "NT": "upnp:event"}); w.Code != http.StatusServiceUnavailable {
		t.Errorf("SUBSCRIBE after Shutdown: %d; want 503", w.Code)
	}
}
