package pcp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unicode/utf8"
)

// validFor reports whether option o may appear with opcode op: §13.1
// (THIRD_PARTY: MAP and PEER), §13.2 (PREFER_FAILURE: MAP), §13.3 (FILTER:
// MAP), RFC 7220 §3 (DESCRIPTION: MAP and PEER).
func (o OptionCode) validFor(op Opcode) bool {
	switch o {
	case OptThirdParty, OptDescription:
		return op == OpMap || op == OpPeer
	case OptPreferFailure, OptFilter:
		return op == OpMap
	}
	return false
}

// String returns the option's name in RFC 6887 §13 or RFC 7220, or its
// number.
func (o OptionCode) String() string {
	switch o {
	case OptThirdParty:
		return "THIRD_PARTY"
	case OptPreferFailure:
		return "PREFER_FAILURE"
	case OptFilter:
		return "FILTER"
	case OptDescription:
		return "DESCRIPTION"
	}
	return fmt.Sprintf("option-%d", uint8(o))
}

// appendOptionHeader appends an option header (§7.3, Figure 4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Option Code  |  Reserved = 0 |       Option Length           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	:       data, then 0-3 zero octets up to a multiple of 4        :
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The length excludes the padding (§7.3: "The Option Length reflects the
// semantic length of the option, not including any padding octets").
func appendOptionHeader(b []byte, code OptionCode, n int) []byte {
	b = append(b, byte(code), 0)
	return binary.BigEndian.AppendUint16(b, uint16(n))
}

// appendPadding appends the zero octets that bring an option of n data
// bytes to a multiple of 4.
func appendPadding(b []byte, n int) []byte {
	var zero [3]byte
	return append(b, zero[:pad4(n)-n]...)
}

// appendOptions appends the options of o valid for op in the order
// THIRD_PARTY, PREFER_FAILURE, FILTER..., DESCRIPTION. An option o holds
// that op does not allow, a FILTER that has no valid prefix, or a
// DESCRIPTION that is not UTF-8 or longer than MaxDescriptionLen returns
// ErrOption.
func appendOptions(b []byte, op Opcode, o Options) ([]byte, error) {
	if o.ThirdParty.IsValid() {
		if !OptThirdParty.validFor(op) {
			return b, fmt.Errorf("%w: THIRD_PARTY with %v", ErrOption, op)
		}
		b = appendOptionHeader(b, OptThirdParty, ThirdPartyLen)
		b = appendAddr(b, o.ThirdParty)
	}
	if o.PreferFailure {
		if !OptPreferFailure.validFor(op) {
			return b, fmt.Errorf("%w: PREFER_FAILURE with %v", ErrOption, op)
		}
		b = appendOptionHeader(b, OptPreferFailure, PreferFailureLen)
	}
	if len(o.Filters) > 0 && !OptFilter.validFor(op) {
		return b, fmt.Errorf("%w: FILTER with %v", ErrOption, op)
	}
	for _, f := range o.Filters {
		var err error
		if b, err = appendFilter(b, f); err != nil {
			return b, err
		}
	}
	if o.HasDescription || o.Description != "" {
		switch {
		case !OptDescription.validFor(op):
			return b, fmt.Errorf("%w: DESCRIPTION with %v", ErrOption, op)
		case len(o.Description) > MaxDescriptionLen:
			return b, fmt.Errorf("%w: DESCRIPTION of %d bytes", ErrOption, len(o.Description))
		case !utf8.ValidString(o.Description):
			return b, fmt.Errorf("%w: DESCRIPTION not UTF-8", ErrOption)
		}
		b = appendOptionHeader(b, OptDescription, len(o.Description))
		b = append(b, o.Description...)
		b = appendPadding(b, len(o.Description))
	}
	return b, nil
}

// appendFilter appends one FILTER option (§13.3, Figure 13):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| code = 3      | reserved = 0  |  option length = 20           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Reserved     | Prefix Length |      Remote Peer Port         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Remote Peer IP Address (128 bits; IPv4-mapped)         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// An IPv4 prefix of n bits goes as 96 + n, except /0, which is 0 (§13.3:
// "The value 0 indicates 'no filter'"). The prefix is sent masked.
func appendFilter(b []byte, f Filter) ([]byte, error) {
	addr := f.Remote.Addr()
	if !f.Remote.IsValid() || addr.Is4In6() || addr.Zone() != "" {
		return b, fmt.Errorf("%w: FILTER prefix %v", ErrOption, f.Remote)
	}
	bits := f.Remote.Bits()
	if addr.Is4() && bits > 0 {
		bits += mappedPrefixBits
	}
	b = appendOptionHeader(b, OptFilter, FilterLen)
	b = append(b, 0, byte(bits))
	b = binary.BigEndian.AppendUint16(b, f.Port)
	a16 := f.Remote.Masked().Addr().As16()
	return append(b, a16[:]...), nil
}

// decodeFilter reads the data of a FILTER option (§13.3). A prefix length
// above 128, or one of 1-95 with an IPv4-mapped address, is ErrOption.
// Prefix length 0 gives the /0 prefix of the address's family. The host
// bits are cleared: only the first Prefix Length bits are relevant.
func decodeFilter(d []byte) (Filter, error) {
	bits := int(d[offFilterPrefixLen])
	a := netip.AddrFrom16([addressLen]byte(d[offFilterAddr:]))
	port := binary.BigEndian.Uint16(d[offFilterPort:])
	if a.Is4In6() {
		switch {
		case bits == 0:
		case bits < mappedPrefixBits || bits > 8*addressLen:
			return Filter{}, fmt.Errorf("%w: FILTER prefix length %d for an IPv4 address", ErrOption, bits)
		default:
			bits -= mappedPrefixBits
		}
		a = a.Unmap()
	} else if bits > 8*addressLen {
		return Filter{}, fmt.Errorf("%w: FILTER prefix length %d", ErrOption, bits)
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return Filter{}, fmt.Errorf("%w: FILTER: %v", ErrOption, err)
	}
	return Filter{Remote: p, Port: port}, nil
}

// optionsDecoder decodes the options of one message (§7.3). In a request
// an unknown mandatory option is an error; in a response it is ignored
// (§7.3: "PCP clients MUST ignore Options that they do not understand that
// appear in responses, including Options in the mandatory-to-process
// range").
type optionsDecoder struct {
	op       Opcode
	response bool
}

// decode reads the options in b, which starts at the first option and
// ends at the message's end. Errors wrap ErrOption (malformed, repeated,
// not valid for the opcode: MALFORMED_OPTION) or ErrUnsupportedOption
// (UNSUPP_OPTION).
func (d optionsDecoder) decode(b []byte) (Options, error) {
	var o Options
	var seenThirdParty bool
	for len(b) > 0 {
		if len(b) < OptionHeaderLen {
			return Options{}, fmt.Errorf("%w: %d bytes after the last option", ErrOption, len(b))
		}
		code := OptionCode(b[offOptionCode])
		n := int(binary.BigEndian.Uint16(b[offOptionLength:]))
		end := OptionHeaderLen + pad4(n)
		if end > len(b) {
			return Options{}, fmt.Errorf("%w: %v of %d bytes overruns the message", ErrOption, code, n)
		}
		data := b[OptionHeaderLen : OptionHeaderLen+n]
		b = b[end:]
		if !code.known() {
			if code.Mandatory() && !d.response {
				return Options{}, fmt.Errorf("%w: %v", ErrUnsupportedOption, code)
			}
			o.Ignored++
			continue
		}
		if !code.validFor(d.op) {
			return Options{}, fmt.Errorf("%w: %v not valid with %v", ErrOption, code, d.op)
		}
		if want, fixed := code.fixedLen(); fixed && n != want {
			return Options{}, fmt.Errorf("%w: %v of %d bytes, want %d", ErrOption, code, n, want)
		}
		switch code {
		case OptThirdParty:
			// §13.1: "Maximum occurrences: 1"; an unspecified address
			// names no host.
			a := decodeAddr(data)
			if seenThirdParty || !a.IsValid() {
				return Options{}, fmt.Errorf("%w: THIRD_PARTY repeated or unspecified", ErrOption)
			}
			seenThirdParty, o.ThirdParty = true, a
		case OptPreferFailure:
			// §13.2: "Maximum occurrences: 1".
			if o.PreferFailure {
				return Options{}, fmt.Errorf("%w: PREFER_FAILURE repeated", ErrOption)
			}
			o.PreferFailure = true
		case OptFilter:
			f, err := decodeFilter(data)
			if err != nil {
				return Options{}, err
			}
			o.Filters = append(o.Filters, f)
		case OptDescription:
			// RFC 7220 §3: "Maximum occurrences: 1", at most
			// MaxDescriptionLen bytes of UTF-8.
			if o.HasDescription || n > MaxDescriptionLen || !utf8.Valid(data) {
				return Options{}, fmt.Errorf("%w: DESCRIPTION repeated, too long or not UTF-8", ErrOption)
			}
			o.Description, o.HasDescription = string(data), true
		}
	}
	return o, nil
}

// known reports whether this package decodes o.
func (o OptionCode) known() bool {
	switch o {
	case OptThirdParty, OptPreferFailure, OptFilter, OptDescription:
		return true
	}
	return false
}

// fixedLen returns the length an option must have, and whether it has one.
func (o OptionCode) fixedLen() (int, bool) {
	switch o {
	case OptThirdParty:
		return ThirdPartyLen, true
	case OptPreferFailure:
		return PreferFailureLen, true
	case OptFilter:
		return FilterLen, true
	}
	return 0, false
}
