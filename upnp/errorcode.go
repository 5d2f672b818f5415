package upnp

import "strconv"

// ErrorCode is the errorCode of a UPnPError (UDA 1.1 §3.2.2): 4xx and 5xx
// from UDA, 600 to 699 common to all services, 700 to 799 defined by each
// service template. Compare a *Fault's Code with int(c), or use
// Fault.ErrorCode and FaultCode.
type ErrorCode int

// Error codes of UDA 1.1 §3.2.2 (Table 3-3) and of the port-mapping actions
// of the WANIPConnection:1 and WANIPConnection:2 service templates (each
// action's error table), which WANPPPConnection:1 shares.
const (
	// InvalidAction is "401 Invalid Action: No action by that name at
	// this service" (UDA 1.1 §3.2.2).
	InvalidAction ErrorCode = 401
	// InvalidArgs is "402 Invalid Args: Could be any of the following: not
	// enough in args, args in the wrong order, one or more in args are of
	// the wrong data type" (UDA 1.1 §3.2.2). Some routers send it for a
	// lease they do not support, where 725 is meant.
	InvalidArgs ErrorCode = 402
	// ActionFailed is "501 Action Failed: May be returned if current state
	// of service prevents invoking that action" (UDA 1.1 §3.2.2).
	ActionFailed ErrorCode = 501
	// ArgumentValueInvalid is "600 Argument Value Invalid: The argument
	// value is invalid" (UDA 1.1 §3.2.2).
	ArgumentValueInvalid ErrorCode = 600
	// ArgumentValueOutOfRange is "601 Argument Value Out of Range: An
	// argument value is less than the minimum or more than the maximum
	// value of the allowed value range, or is not in the allowed value
	// list" (UDA 1.1 §3.2.2).
	ArgumentValueOutOfRange ErrorCode = 601
	// OptionalActionNotImplemented is "602 Optional Action Not
	// Implemented" (UDA 1.1 §3.2.2).
	OptionalActionNotImplemented ErrorCode = 602
	// OutOfMemory is "603 Out of Memory" (UDA 1.1 §3.2.2).
	OutOfMemory ErrorCode = 603
	// HumanInterventionRequired is "604 Human Intervention Required"
	// (UDA 1.1 §3.2.2).
	HumanInterventionRequired ErrorCode = 604
	// StringArgumentTooLong is "605 String Argument Too Long" (UDA 1.1
	// §3.2.2).
	StringArgumentTooLong ErrorCode = 605
	// ActionNotAuthorized is "606 Action not authorized" (UDA 1.1 §3.2.2;
	// WANIPConnection:2 answers it where a policy refuses a mapping).
	ActionNotAuthorized ErrorCode = 606
	// SpecifiedArrayIndexInvalid is "713 SpecifiedArrayIndexInvalid: The
	// specified array index is out of bounds" (GetGenericPortMappingEntry
	// past the last entry).
	SpecifiedArrayIndexInvalid ErrorCode = 713
	// NoSuchEntryInArray is "714 NoSuchEntryInArray: The specified value
	// does not exist in the array" (GetSpecificPortMappingEntry,
	// DeletePortMapping).
	NoSuchEntryInArray ErrorCode = 714
	// WildCardNotPermittedInSrcIP is "715 WildCardNotPermittedInSrcIP: The
	// source IP address cannot be wild-carded".
	WildCardNotPermittedInSrcIP ErrorCode = 715
	// WildCardNotPermittedInExtPort is "716 WildCardNotPermittedInExtPort:
	// The external port cannot be wild-carded".
	WildCardNotPermittedInExtPort ErrorCode = 716
	// ConflictInMappingEntry is "718 ConflictInMappingEntry: The port
	// mapping entry specified conflicts with a mapping assigned previously
	// to another client".
	ConflictInMappingEntry ErrorCode = 718
	// SamePortValuesRequired is "724 SamePortValuesRequired: Internal and
	// External port values must be the same".
	SamePortValuesRequired ErrorCode = 724
	// OnlyPermanentLeasesSupported is "725 OnlyPermanentLeasesSupported:
	// The NAT implementation only supports permanent lease times on port
	// mappings": retry with lease 0.
	OnlyPermanentLeasesSupported ErrorCode = 725
	// RemoteHostOnlySupportsWildcard is "726
	// RemoteHostOnlySupportsWildcard: RemoteHost must be a wildcard and
	// cannot be a specific IP address or DNS name".
	RemoteHostOnlySupportsWildcard ErrorCode = 726
	// ExternalPortOnlySupportsWildcard is "727
	// ExternalPortOnlySupportsWildcard: ExternalPort must be a wildcard and
	// cannot be a specific port value".
	ExternalPortOnlySupportsWildcard ErrorCode = 727
	// NoPortMapsAvailable is "728 NoPortMapsAvailable: There are not enough
	// free ports available to complete port mapping" (WANIPConnection:2).
	NoPortMapsAvailable ErrorCode = 728
	// ConflictWithOtherMechanisms is "729 ConflictWithOtherMechanisms:
	// Attempted port mapping is not allowed due to conflict with other
	// mechanisms" (WANIPConnection:2).
	ConflictWithOtherMechanisms ErrorCode = 729
	// PortMappingNotFound is "730 PortMappingNotFound" (WANIPConnection:2,
	// DeletePortMappingRange and GetListOfPortMappings with nothing in the
	// range).
	PortMappingNotFound ErrorCode = 730
	// ReadOnly is "731 ReadOnly" (WANIPConnection:2).
	ReadOnly ErrorCode = 731
	// WildCardNotPermittedInIntPort is "732 WildCardNotPermittedInIntPort:
	// The internal port cannot be wild-carded" (WANIPConnection:2).
	WildCardNotPermittedInIntPort ErrorCode = 732
	// InconsistentParameters is "733 InconsistentParameters: The
	// parameters are not consistent" (WANIPConnection:2, a start port
	// above the end port).
	InconsistentParameters ErrorCode = 733
)

// Error codes of WANIPv6FirewallControl:1 (its actions' error tables). They
// reuse 701 to 709, which WANIPConnection does not define.
const (
	// PinholeSpaceExhausted is "701 PinholeSpaceExhausted: Creating a
	// pinhole would exceed the number of pinholes the gateway holds"
	// (AddPinhole).
	PinholeSpaceExhausted ErrorCode = 701
	// FirewallDisabled is "702 FirewallDisabled: the firewall is disabled
	// and the action with it".
	FirewallDisabled ErrorCode = 702
	// InboundPinholeNotAllowed is "703 InboundPinholeNotAllowed: creating
	// inbound pinholes by control points is not allowed".
	InboundPinholeNotAllowed ErrorCode = 703
	// NoSuchEntry is "704 NoSuchEntry: there is no pinhole with the
	// specified UniqueID".
	NoSuchEntry ErrorCode = 704
	// ProtocolNotSupported is "705 ProtocolNotSupported: the protocol
	// value is not supported by the gateway".
	ProtocolNotSupported ErrorCode = 705
	// InternalPortWildcardingNotAllowed is "706
	// InternalPortWildcardingNotAllowed: the internal port cannot be
	// wild-carded".
	InternalPortWildcardingNotAllowed ErrorCode = 706
	// ProtocolWildcardingNotAllowed is "707 ProtocolWildcardingNotAllowed:
	// the protocol cannot be wild-carded (65535)".
	ProtocolWildcardingNotAllowed ErrorCode = 707
	// WildCardNotPermittedInSrcIP6 is "708 WildCardNotPermittedInSrcIP:
	// the internal client cannot be wild-carded" (WANIPv6FirewallControl's
	// number for the name WANIPConnection gives 715).
	WildCardNotPermittedInSrcIP6 ErrorCode = 708
	// NoTrafficReceived is "709 NoTrafficReceived: no traffic of this
	// pinhole has been received by the gateway" (CheckPinholeWorking).
	NoTrafficReceived ErrorCode = 709
)

// String returns the code's errorDescription as its specification spells
// it ("Invalid Args", "ConflictInMappingEntry"), or "error-code-N" for a
// code this package does not know.
func (c ErrorCode) String() string {
	if n := c.name(); n != "" {
		return n
	}
	return "error-code-" + strconv.Itoa(int(c))
}

// name returns the specification's name of c, or "".
func (c ErrorCode) name() string {
	switch c {
	case InvalidAction:
		return "Invalid Action"
	case InvalidArgs:
		return "Invalid Args"
	case ActionFailed:
		return "Action Failed"
	case ArgumentValueInvalid:
		return "Argument Value Invalid"
	case ArgumentValueOutOfRange:
		return "Argument Value Out of Range"
	case OptionalActionNotImplemented:
		return "Optional Action Not Implemented"
	case OutOfMemory:
		return "Out of Memory"
	case HumanInterventionRequired:
		return "Human Intervention Required"
	case StringArgumentTooLong:
		return "String Argument Too Long"
	case ActionNotAuthorized:
		return "Action not authorized"
	case SpecifiedArrayIndexInvalid:
		return "SpecifiedArrayIndexInvalid"
	case NoSuchEntryInArray:
		return "NoSuchEntryInArray"
	case WildCardNotPermittedInSrcIP:
		return "WildCardNotPermittedInSrcIP"
	case WildCardNotPermittedInExtPort:
		return "WildCardNotPermittedInExtPort"
	case ConflictInMappingEntry:
		return "ConflictInMappingEntry"
	case SamePortValuesRequired:
		return "SamePortValuesRequired"
	case OnlyPermanentLeasesSupported:
		return "OnlyPermanentLeasesSupported"
	case RemoteHostOnlySupportsWildcard:
		return "RemoteHostOnlySupportsWildcard"
	case ExternalPortOnlySupportsWildcard:
		return "ExternalPortOnlySupportsWildcard"
	case NoPortMapsAvailable:
		return "NoPortMapsAvailable"
	case ConflictWithOtherMechanisms:
		return "ConflictWithOtherMechanisms"
	case PortMappingNotFound:
		return "PortMappingNotFound"
	case ReadOnly:
		return "ReadOnly"
	case WildCardNotPermittedInIntPort:
		return "WildCardNotPermittedInIntPort"
	case InconsistentParameters:
		return "InconsistentParameters"
	case PinholeSpaceExhausted:
		return "PinholeSpaceExhausted"
	case FirewallDisabled:
		return "FirewallDisabled"
	case InboundPinholeNotAllowed:
		return "InboundPinholeNotAllowed"
	case NoSuchEntry:
		return "NoSuchEntry"
	case ProtocolNotSupported:
		return "ProtocolNotSupported"
	case InternalPortWildcardingNotAllowed:
		return "InternalPortWildcardingNotAllowed"
	case ProtocolWildcardingNotAllowed:
		return "ProtocolWildcardingNotAllowed"
	case WildCardNotPermittedInSrcIP6:
		return "WildCardNotPermittedInSrcIP"
	case NoTrafficReceived:
		return "NoTrafficReceived"
	}
	return ""
}
