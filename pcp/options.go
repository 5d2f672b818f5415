package pcp

import "net/netip"

// OptionCode identifies an option (§7.3). Codes 0-127 are mandatory to
// process, 128-255 optional (§7.3: "The most significant bit ... indicates
// if this option is mandatory (0) or optional (1) to process").
type OptionCode uint8

// The options this package knows.
const (
	// OptThirdParty names the internal host a mapping is for (§13.1).
	OptThirdParty OptionCode = 1
	// OptPreferFailure asks for failure rather than another external
	// port or address (§13.2).
	OptPreferFailure OptionCode = 2
	// OptFilter admits only the listed remote peers (§13.3).
	OptFilter OptionCode = 3
	// OptDescription carries a human-readable description (RFC 7220 §2).
	OptDescription OptionCode = 128
)

// Mandatory reports whether a server that does not know o must refuse the
// request with UNSUPP_OPTION (§7.3).
func (o OptionCode) Mandatory() bool { return o < 128 }

// Option lengths in bytes, without the 4-byte option header.
const (
	ThirdPartyLen    = addressLen                 // 16, §13.1, Figure 12
	PreferFailureLen = 0                          // §13.2
	FilterLen        = offFilterAddr + addressLen // 20, §13.3, Figure 13
	// MaxDescriptionLen bounds a DESCRIPTION (RFC 7220 §2: the length is
	// that of the UTF-8 string, the message's limit bounds it).
	MaxDescriptionLen = MaxMessageLen - HeaderLen - PeerDataLen - OptionHeaderLen
)

// Filter is one FILTER option (§13.3): remote peers in Remote (a prefix of
// the mapping's family; /0 for any address) and from Port (0 for any port)
// may send to the mapping. On the wire the prefix length counts bits of the
// IPv6 (or IPv4-mapped) address (§13.3: "for IPv4 ... 96 + the IPv4 prefix
// length").
type Filter struct {
	Remote netip.Prefix
	Port   uint16
}

// Options are the options of a MAP or PEER request or response. The zero
// value has none.
type Options struct {
	// ThirdParty is the internal address of THIRD_PARTY (§13.1); the zero
	// Addr when absent.
	ThirdParty netip.Addr
	// PreferFailure is set when PREFER_FAILURE (§13.2) is present.
	PreferFailure bool
	// Filters are the FILTER options in the order received (§13.3),
	// each prefix with its host bits cleared. A /0 Remote is a FILTER of
	// prefix length 0, which §13.3 calls "no filter" and which "will
	// remove all previous filters"; EffectiveFilters applies that rule.
	Filters []Filter
	// Description is the DESCRIPTION option (RFC 7220); HasDescription
	// tells an empty one from none.
	Description    string
	HasDescription bool
	// Ignored counts optional options that were skipped because this
	// package does not know them (§7.3: "it MUST be ignored").
	Ignored int
}

// EffectiveFilters returns the filters that remain after the last one of
// prefix length 0 (§13.3: "The value 0 indicates 'no filter', and will
// remove all previous filters"), nil when none remain: any peer may send.
func (o Options) EffectiveFilters() []Filter {
	for i := len(o.Filters) - 1; i >= 0; i-- {
		if o.Filters[i].Remote.Bits() == 0 {
			if i == len(o.Filters)-1 {
				return nil
			}
			return o.Filters[i+1:]
		}
	}
	return o.Filters
}
