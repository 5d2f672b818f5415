package e2e

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
	"github.com/portlease/portlease/upnp"
)

// soapAction posts act to the gateway's WANIPConnection:2 control URL from
// host, on a connection of its own, and returns the whole answer: raw, so
// that an HTTP 503 is seen as such (igdclient waits one out and tries
// again).
func soapAction(host *netlab.Host, act upnp.Action) (string, error) {
	body := act.AppendEnvelope(nil)
	return rawHTTP(host, "198.51.100.1:5000", fmt.Sprintf("POST /ctl/IPConn HTTP/1.1\r\nHost: 198.51.100.1:5000\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n"+
		"SOAPAction: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", act.SOAPAction(), len(body), body))
}

var retryAfter = regexp.MustCompile(`(?im)^Retry-After: *\d+\r?$`)

// TestUPnPRequestRatePerHost: with "request rate per host 5 burst 10", a
// LAN host that sends many AddPortMapping and DeletePortMapping at once gets
// HTTP 503 with Retry-After for those over its rate (the daemon logs them
// once); its upnpc -l walk of the table right after is not cut short, as
// reads are not counted; and a second LAN host's upnpc -a succeeds at once.
func TestUPnPRequestRatePerHost(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{Verbose: true, ExtraLines: []string{"request rate per host 5 burst 10"}})
	flooder, other := lab.LAN[1], lab.LAN[0]
	self := flooder.Addr4.String()

	// 8 connections at once (within the 16 a host may hold), 12
	// actions each: every fourth a deletion of a port never mapped, which
	// within the rate is answered with fault 714 NoSuchEntryInArray.
	const workers, each = 8, 12
	type answer struct {
		port   uint16
		delete bool
		out    string
		err    error
	}
	answers := make(chan answer, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				port := uint16(20000 + w*each + i)
				a := answer{port: port, delete: i%4 == 3}
				act := upnp.AddPortMapping(upnp.ServiceWANIP2, upnp.PortMapping{ExternalPort: port, Protocol: "TCP",
					InternalPort: port, InternalClient: self, Enabled: true, Description: "flood", LeaseDuration: 3600})
				if a.delete {
					act = upnp.DeletePortMapping(upnp.ServiceWANIP2, "", port+1000, "TCP")
				}
				a.out, a.err = soapAction(flooder, act)
				answers <- a
			}
		})
	}
	wg.Wait()
	close(answers)

	var granted []uint16
	var busy, busyDeletes, notFound int
	for a := range answers {
		status, _, _ := strings.Cut(a.out, "\r\n")
		switch {
		case a.err != nil:
			t.Fatalf("action on port %d: %v", a.port, a.err)
		case strings.HasPrefix(status, "HTTP/1.1 503 "):
			if !retryAfter.MatchString(a.out) {
				t.Errorf("a 503 without Retry-After:\n%s", a.out)
			}
			busy++
			if a.delete {
				busyDeletes++
			}
		case !a.delete && strings.HasPrefix(status, "HTTP/1.1 200 "):
			granted = append(granted, a.port)
		case a.delete && strings.HasPrefix(status, "HTTP/1.1 500 ") && strings.Contains(a.out, "<errorCode>714</errorCode>"):
			notFound++
		default:
			t.Fatalf("AddPortMapping or DeletePortMapping (delete %v) of port %d answered:\n%s", a.delete, a.port, a.out)
		}
	}
	t.Logf("%d actions at once: %d mappings granted, %d deletions answered 714, %d refused with 503 (%d deletions)", workers*each, len(granted), notFound, busy, busyDeletes)
	if busy == 0 {
		t.Fatalf("%d actions at once over a rate of 5/s: none answered 503", workers*each)
	}
	if busyDeletes == 0 {
		t.Fatalf("no DeletePortMapping answered 503: deletions are not counted against the rate")
	}
	if len(granted)+notFound < 10 {
		t.Errorf("%d actions at once: %d served; want at least the burst, 10", workers*each, len(granted)+notFound)
	}

	// The flooding host's bucket is empty: its walk of the table reads
	// every entry all the same.
	table := labpeers.UPnPC(t, flooder, "-u", descURL, "-l")
	for _, port := range granted {
		if !listed(table, "TCP", int(port), netip.AddrPortFrom(flooder.Addr4, port).String()) {
			t.Fatalf("upnpc -l on the flooding host lacks its mapping of port %d (of %d granted): the walk was cut short?\n%s", port, len(granted), table)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^\s*\d+\s+TCP\s+\d+->`).FindAllString(table, -1)); n != len(granted) {
		t.Fatalf("upnpc -l lists %d mappings; want the %d granted:\n%s", n, len(granted), table)
	}

	// The other host has a bucket of its own.
	out := labpeers.UPnPC(t, other, "-u", descURL, "-a", other.Addr4.String(), "8080", "8080", "TCP", "3600")
	if !strings.Contains(out, "is redirected to internal "+other.Addr4.String()+":8080") {
		t.Fatalf("upnpc -a on the other host printed:\n%s", out)
	}
	waitLog(t, d, `msg="requests over the rate refused" service=upnp host=`+self)
	if n := strings.Count(d.Log(), "requests over the rate refused"); n > 2 {
		t.Errorf("the refusals were logged %d times; want once a minute per host:\n%s", n, d.Log())
	}
}
