package upnp

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// SSDPPort is the UDP port of SSDP: devices listen on it for M-SEARCH
// requests and send their NOTIFY advertisements to it (UPnP Device
// Architecture 1.1 §1, "multicast address 239.255.255.250:1900").
const SSDPPort = 1900

// SSDPMulticastAddr returns 239.255.255.250:1900, the IPv4 multicast group
// and port of SSDP (UDA 1.1 §1).
func SSDPMulticastAddr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 255, 255, 250}), SSDPPort)
}

// SSDPMulticastAddr6 returns [ff02::c]:1900, the link-local IPv6 multicast
// group and port of SSDP (UDA 1.1 Appendix A, "FF02::C").
func SSDPMulticastAddr6() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x0c}), SSDPPort)
}

// Device and service types of the Internet Gateway Device (InternetGateway-
// Device:1 and :2 device templates; WANIPConnection:1 and :2,
// WANPPPConnection:1 and WANCommonInterfaceConfig:1 service templates), and
// the search targets of UDA 1.1 §1.3.2.
const (
	DeviceIGD1           = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	DeviceIGD2           = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
	DeviceWAN1           = "urn:schemas-upnp-org:device:WANDevice:1"
	DeviceWAN2           = "urn:schemas-upnp-org:device:WANDevice:2"
	DeviceWANConnection1 = "urn:schemas-upnp-org:device:WANConnectionDevice:1"
	DeviceWANConnection2 = "urn:schemas-upnp-org:device:WANConnectionDevice:2"
	ServiceWANIP1        = "urn:schemas-upnp-org:service:WANIPConnection:1"
	ServiceWANIP2        = "urn:schemas-upnp-org:service:WANIPConnection:2"
	ServiceWANPPP1       = "urn:schemas-upnp-org:service:WANPPPConnection:1"
	ServiceWANCommon1    = "urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1"

	// SearchAll is the ST of a search for every device and service
	// (UDA 1.1 §1.3.2, "ssdp:all").
	SearchAll = "ssdp:all"
	// SearchRootDevice is the ST of a search for root devices only
	// (UDA 1.1 §1.3.2, "upnp:rootdevice").
	SearchRootDevice = "upnp:rootdevice"
)

// Size limits of the parsers. Larger input yields ErrTooLarge.
const (
	// MaxSSDPSize bounds an SSDP message, which is one UDP datagram
	// (UDA 1.1 §1.1); real ones stay under 1 KiB.
	MaxSSDPSize = 8 << 10
	// MaxDescriptionSize bounds a device description (UDA 1.1 §2.3).
	MaxDescriptionSize = 256 << 10
	// MaxActionRequestSize bounds the body of a control request a device
	// accepts (UDA 1.1 §3.2.1); IGD requests are a few hundred bytes.
	MaxActionRequestSize = 64 << 10
	// MaxResponseSize bounds the body of a control response a control
	// point accepts (UDA 1.1 §3.2.2); a GetListOfPortMappings answer can
	// hold thousands of entries.
	MaxResponseSize = 256 << 10
)

// maxXMLDepth bounds the nesting of elements in every XML document this
// package reads. An IGD description nests about ten deep and a SOAP
// envelope four; the bound keeps hostile input from costing more than its
// size.
const maxXMLDepth = 64

// Errors of the parsers and encoders, for errors.Is. Parse errors say what
// was wrong and wrap one of these.
var (
	// ErrNotSSDP means a datagram does not start with the start line of
	// the SSDP message asked for (UDA 1.1 §1.1.1).
	ErrNotSSDP = errors.New("upnp: not an SSDP message")
	// ErrTooLarge means the input is larger than the parser's limit
	// (MaxSSDPSize, MaxDescriptionSize, MaxActionRequestSize,
	// MaxResponseSize).
	ErrTooLarge = errors.New("upnp: message too large")
	// ErrMalformed means a message does not have the structure its
	// specification gives it, or a required field is missing or
	// unreadable. *ArgError wraps it too.
	ErrMalformed = errors.New("upnp: malformed message")
	// ErrActionMismatch means a SOAP body does not hold the action asked
	// for: on the device side, the SOAPACTION header is unreadable or names
	// another action or service than the body (UDA 1.1 §3.2.1); on the
	// control point side, the response element is not the action's
	// "…Response" element (§3.2.2). A device answers it with 401 Invalid
	// Action.
	ErrActionMismatch = errors.New("upnp: action does not match")
	// ErrInvalid means a value cannot be encoded: a required field is
	// empty, a number is out of range, or a header value holds a line
	// break or another control character.
	ErrInvalid = errors.New("upnp: invalid value")
)

// wireError is an error with its own message that matches one of the
// sentinels above with errors.Is.
type wireError struct {
	msg  string
	kind error
}

func (e *wireError) Error() string { return "upnp: " + e.msg }
func (e *wireError) Unwrap() error { return e.kind }

// malformed returns an error wrapping ErrMalformed.
func malformed(format string, args ...any) error {
	return &wireError{msg: fmt.Sprintf(format, args...), kind: ErrMalformed}
}

// mismatch returns an error wrapping ErrActionMismatch.
func mismatch(format string, args ...any) error {
	return &wireError{msg: fmt.Sprintf(format, args...), kind: ErrActionMismatch}
}

// invalid returns an error wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return &wireError{msg: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// notSSDP returns an error wrapping ErrNotSSDP.
func notSSDP(format string, args ...any) error {
	return &wireError{msg: fmt.Sprintf(format, args...), kind: ErrNotSSDP}
}

// readLimited reads r to its end, or fails with ErrTooLarge once more than
// limit bytes arrive.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("upnp: read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, ErrTooLarge
	}
	return data, nil
}
