package ssdpsrv

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portlease/portlease/upnp"
)

// target is one thing the device advertises: the NT of an ssdp:alive
// (UDA 1.1 §1.2.2), which is also the ST of a search response (§1.3.3),
// with its unique service name.
type target struct {
	nt  string
	usn string
}

// udn is the root device's unique device name, "uuid:" and the UUID
// (UDA 1.1 §1.1.4).
func (d *Device) udn() string { return "uuid:" + d.UUID }

// udnOf returns the UDN of the device that has type typ: the device of
// that type, or the device that holds the service of that type
// (Device.UUIDs), by default the root device.
func (d *Device) udnOf(typ string) string {
	if u, ok := d.UUIDs[typ]; ok {
		return "uuid:" + u
	}
	return d.udn()
}

// targets returns what the device advertises, in the order of UDA 1.1
// §1.2.2: for the root device upnp:rootdevice, uuid:device-UUID and its
// device type; for each embedded device uuid:device-UUID and its type;
// for each service its type, in the USN of the device that holds it. A
// UUID or type listed twice is advertised once: embedded devices without
// a UUID of their own share the root device's.
func (d *Device) targets() []target {
	root := d.udn()
	ts := make([]target, 0, 2+2*len(d.DeviceTypes)+len(d.ServiceTypes))
	ts = append(ts, target{nt: upnp.SearchRootDevice, usn: root + "::" + upnp.SearchRootDevice})
	seen := make(map[string]bool, 1+2*len(d.DeviceTypes)+len(d.ServiceTypes))
	add := func(nt, usn string) {
		if !seen[nt] {
			seen[nt] = true
			ts = append(ts, target{nt: nt, usn: usn})
		}
	}
	for _, typ := range d.DeviceTypes {
		udn := d.udnOf(typ)
		add(udn, udn)
		add(typ, udn+"::"+typ)
	}
	for _, typ := range d.ServiceTypes {
		add(typ, d.udnOf(typ)+"::"+typ)
	}
	return ts
}

// answers returns the responses a search for st gets (UDA 1.1 §1.3.2),
// each as the ST and USN of one search response (§1.3.3):
//
//   - "ssdp:all": every target, as advertised (3+2d+k responses for a
//     root device with d embedded devices and k service types, fewer here
//     because the embedded devices share the root device's UUID);
//   - "upnp:rootdevice": one, USN uuid:device-UUID::upnp:rootdevice;
//   - "uuid:device-UUID": one, USN uuid:device-UUID, when the UUID is the
//     root device's or an embedded device's;
//   - a device or service type: one, when the device has that type in the
//     version asked for or a higher one. §1.3.2: "Devices MUST respond to
//     M-SEARCH requests for any supported version", that is a lower version
//     that a higher one is backward compatible with, and "the response MUST
//     specify the same version as was contained in the search request": the
//     ST is the one asked for, and so is the type in the USN, whose UUID is
//     that of the device that has the type.
//
// Anything else gets nothing. The keywords "ssdp:all", "upnp:rootdevice"
// and "uuid:" and the UUID itself match without regard to case; types
// match exactly, as URNs are compared.
func (d *Device) answers(st string) []target {
	udn := d.udn()
	switch {
	case st == "":
		return nil
	case strings.EqualFold(st, upnp.SearchAll):
		return d.targets()
	case strings.EqualFold(st, upnp.SearchRootDevice):
		return []target{{nt: st, usn: udn + "::" + upnp.SearchRootDevice}}
	case len(st) > len("uuid:") && strings.EqualFold(st[:len("uuid:")], "uuid:"):
		for _, u := range append([]string{d.UUID}, slices.Collect(maps.Values(d.UUIDs))...) {
			if strings.EqualFold(st[len("uuid:"):], u) {
				return []target{{nt: st, usn: "uuid:" + u}}
			}
		}
		return nil
	}
	for _, types := range [][]string{d.DeviceTypes, d.ServiceTypes} {
		for _, typ := range types {
			if covers(typ, st) {
				return []target{{nt: st, usn: d.udnOf(typ) + "::" + st}}
			}
		}
	}
	return nil
}

// covers reports whether a device or service of type have answers a
// search for type asked: the same type, or the same type in a lower
// version (UDA 1.1 §1.3.2). Types are "urn:domain-name:device:deviceType:ver"
// and "urn:domain-name:service:serviceType:ver", ver a positive integer; a
// type without a version matches only itself.
func covers(have, asked string) bool {
	if have == asked {
		return true
	}
	hbase, hver, ok := splitVersion(have)
	if !ok {
		return false
	}
	abase, aver, ok := splitVersion(asked)
	return ok && hbase == abase && aver <= hver
}

// splitVersion splits "urn:…:name:ver" into "urn:…:name" and ver, which
// must be decimal digits worth 1 to 2^31-1.
func splitVersion(typ string) (base string, ver int, ok bool) {
	i := strings.LastIndexByte(typ, ':')
	if i <= 0 || i == len(typ)-1 || !strings.HasPrefix(typ, "urn:") {
		return "", 0, false
	}
	digits := typ[i+1:]
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return "", 0, false
		}
	}
	v, err := strconv.ParseInt(digits, 10, 32)
	if err != nil || v < 1 {
		return "", 0, false
	}
	return typ[:i], int(v), true
}

// ids are the numbers of UDA 1.1 §1.2.2 that change while the device runs.
type ids struct {
	boot, config int
}

// appendResponse appends the search response (UDA 1.1 §1.3.3) for t, sent
// on a link whose description URL is location. SEARCHPORT.UPNP.ORG is
// written only for a port other than 1900.
func (d *Device) appendResponse(b []byte, t target, location string, id ids) ([]byte, error) {
	return upnp.SearchResponse{
		ST:         t.nt,
		USN:        t.usn,
		Location:   location,
		Server:     d.Server,
		MaxAge:     int(d.MaxAge / time.Second),
		BootID:     id.boot,
		ConfigID:   id.config,
		SearchPort: d.searchPort(),
	}.AppendBinary(b)
}

// appendNotify appends the advertisement of t with sub-type nts, sent to
// the group that host names (the HOST header) on a link whose description
// URL is location:
//
//   - ssdp:alive (UDA 1.1 §1.2.2): CACHE-CONTROL, LOCATION, SERVER, NT,
//     NTS, USN, BOOTID.UPNP.ORG, CONFIGID.UPNP.ORG, SEARCHPORT.UPNP.ORG;
//   - ssdp:byebye (§1.2.3): NT, NTS, USN, BOOTID.UPNP.ORG,
//     CONFIGID.UPNP.ORG;
//   - ssdp:update (§1.2.4): LOCATION, NT, NTS, USN, BOOTID.UPNP.ORG (the
//     current one), CONFIGID.UPNP.ORG, NEXTBOOTID.UPNP.ORG (next),
//     SEARCHPORT.UPNP.ORG.
func (d *Device) appendNotify(b []byte, host string, t target, nts, location string, id ids, next int) ([]byte, error) {
	n := upnp.Notify{
		Host:       host,
		NT:         t.nt,
		NTS:        nts,
		USN:        t.usn,
		MaxAge:     -1,
		BootID:     id.boot,
		ConfigID:   id.config,
		NextBootID: -1,
	}
	switch nts {
	case upnp.NTSAlive:
		n.MaxAge = int(d.MaxAge / time.Second)
		n.Location = location
		n.Server = d.Server
		n.SearchPort = d.searchPort()
	case upnp.NTSUpdate:
		n.Location = location
		n.NextBootID = next
		n.SearchPort = d.searchPort()
	}
	return n.AppendBinary(b)
}

// searchPort is the SEARCHPORT.UPNP.ORG to send: none when unicast
// searches are answered on 1900 (UDA 1.1 §1.2.2: a device that does not
// send it "MUST respond to unicast M-SEARCH messages on port 1900").
func (d *Device) searchPort() int {
	if d.SearchPort == upnp.SSDPPort {
		return 0
	}
	return d.SearchPort
}

// mxShare is the part of MX over which answers are spread. UDA 1.1
// §1.3.3: "Devices MAY assume an MX field value less than that specified";
// answering within four fifths of it leaves the answer time to arrive before
// the control point stops listening, which it does after MX seconds
// (miniupnpc listens exactly as long as the MX it sends).
const mxShare = 4.0 / 5

// replyWindow returns how long the answers to a search may be spread over:
// nothing for a unicast search ("Any device responding to a unicast
// M-SEARCH SHOULD respond within 1 second", UDA 1.1 §1.3.3: at once, here),
// else a share of MX seconds, MX capped at 5 (§1.3.2: "If the MX header
// field specifies a field value greater than 5, the device SHOULD assume
// that it contained the value 5 or less").
func replyWindow(mx int, multicast bool) time.Duration {
	if !multicast || mx <= 0 {
		return 0
	}
	mx = min(mx, upnp.MaxMX)
	return time.Duration(float64(mx) * mxShare * float64(time.Second))
}

// nextDelay returns how long to wait before sending the next of left
// answers when window remains of the time they may be spread over: a random
// time below window/left, so that the answers come at random intervals
// through the window and the last is sent within it (UDA 1.1 §1.3.3: "Devices
// responding to a multicast M-SEARCH SHOULD wait a random period of time
// between 0 seconds and the number of seconds specified in the MX field
// value", and a multiple part response is "spread at random intervals
// through the time period from 0 to the number of seconds specified in the
// MX header field"). rnd(n) returns a number in [0, n).
func nextDelay(window time.Duration, left int, rnd func(n int64) int64) time.Duration {
	if window <= 0 || left <= 0 {
		return 0
	}
	slot := int64(window) / int64(left)
	if slot <= 0 {
		return 0
	}
	return time.Duration(rnd(slot))
}
