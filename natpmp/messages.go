package natpmp

import (
	"encoding/binary"
	"net/netip"
)

// checkLen compares len(b) with the exact length n of a message.
func checkLen(b []byte, n int) error {
	switch {
	case len(b) < n:
		return ErrShortPacket
	case len(b) > n:
		return ErrLongPacket
	}
	return nil
}

// checkRequestHeader checks the version and opcode bytes of a request. The
// response bit is looked at before the version: RFC 6886 §3.5 has a gateway
// ignore responses, and answering a response of any version could set two
// gateways answering each other.
func checkRequestHeader(b []byte) error {
	switch {
	case len(b) < HeaderLen:
		return ErrShortPacket
	case Opcode(b[offOpcode]).IsResponse():
		return ErrNotRequest
	case b[offVersion] != Version:
		return ErrVersion
	}
	return nil
}

// checkResponseHeader checks the version and opcode bytes of a response.
func checkResponseHeader(b []byte) error {
	switch {
	case len(b) < HeaderLen:
		return ErrShortPacket
	case b[offVersion] == pcpVersion:
		return ErrPCPServer
	case b[offVersion] != Version:
		return ErrVersion
	case !Opcode(b[offOpcode]).IsResponse():
		return ErrNotResponse
	}
	return nil
}

// appendResponseHeader appends the first 8 bytes of every response
// (RFC 6886 §3).
func appendResponseHeader(b []byte, op Opcode, c ResultCode, epoch uint32) []byte {
	b = append(b, Version, byte(op|ResponseBit))
	b = binary.BigEndian.AppendUint16(b, uint16(c))
	return binary.BigEndian.AppendUint32(b, epoch)
}

// ExternalAddressRequest asks the gateway for its external IPv4 address
// (RFC 6886 §3.2). It has no fields.
type ExternalAddressRequest struct{}

// AppendBinary appends the 2-byte request of RFC 6886 §3.2 to b:
//
//	 0                   1
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//	+---------------+---------------+
//	| version = 0   | opcode = 0    |
//	+---------------+---------------+
func (ExternalAddressRequest) AppendBinary(b []byte) ([]byte, error) {
	return append(b, Version, byte(OpExternalAddress)), nil
}

// MarshalBinary returns the request of RFC 6886 §3.2.
func (r ExternalAddressRequest) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, ExternalAddressRequestLen))
}

// UnmarshalBinary decodes the request of RFC 6886 §3.2, which must be
// exactly ExternalAddressRequestLen bytes.
func (r *ExternalAddressRequest) UnmarshalBinary(b []byte) error {
	if err := checkRequestHeader(b); err != nil {
		return err
	}
	if Opcode(b[offOpcode]) != OpExternalAddress {
		return ErrOpcode
	}
	if err := checkLen(b, ExternalAddressRequestLen); err != nil {
		return err
	}
	*r = ExternalAddressRequest{}
	return nil
}

// ExternalAddressResponse tells the gateway's external IPv4 address (RFC 6886
// §3.2). Sent unsolicited to AnnounceAddr it is an announcement (§3.2.1).
type ExternalAddressResponse struct {
	// ResultCode is Success or the reason of the failure.
	ResultCode ResultCode
	// Epoch is the Seconds Since Start of Epoch (§3.6).
	Epoch uint32
	// Address is the external IPv4 address. §3.2: "If the result code is
	// non-zero, the value of the External IPv4 Address field is undefined
	// (MUST be set to zero on transmission, and MUST be ignored on
	// reception)", so it is the zero netip.Addr after decoding a failure
	// and is not encoded for one.
	Address netip.Addr
}

// AppendBinary appends the 12-byte response of RFC 6886 §3.2 to b:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------+---------------+-------------------------------+
//	| version = 0   | opcode = 128  | result code                   |
//	+---------------+---------------+-------------------------------+
//	| seconds since start of epoch                                  |
//	+---------------------------------------------------------------+
//	| external IPv4 address (a.b.c.d; 0.0.0.0 unless success)       |
//	+---------------------------------------------------------------+
//
// A successful response needs an IPv4 Address (an IPv4-mapped IPv6 address
// is unmapped); otherwise AppendBinary returns b unchanged and ErrNotIPv4.
func (r ExternalAddressResponse) AppendBinary(b []byte) ([]byte, error) {
	var a [addressLen]byte
	if r.ResultCode == Success {
		addr := r.Address.Unmap()
		if !addr.Is4() {
			return b, ErrNotIPv4
		}
		a = addr.As4()
	}
	b = appendResponseHeader(b, OpExternalAddress, r.ResultCode, r.Epoch)
	return append(b, a[:]...), nil
}

// MarshalBinary returns the response of RFC 6886 §3.2.
func (r ExternalAddressResponse) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, ExternalAddressResponseLen))
}

// UnmarshalBinary decodes the response of RFC 6886 §3.2, which must be
// exactly ExternalAddressResponseLen bytes. A version 2 packet yields
// ErrPCPServer.
func (r *ExternalAddressResponse) UnmarshalBinary(b []byte) error {
	if err := checkResponseHeader(b); err != nil {
		return err
	}
	if Opcode(b[offOpcode]) != OpExternalAddress|ResponseBit {
		return ErrOpcode
	}
	if err := checkLen(b, ExternalAddressResponseLen); err != nil {
		return err
	}
	v := ExternalAddressResponse{
		ResultCode: ResultCode(binary.BigEndian.Uint16(b[offResult:])),
		Epoch:      binary.BigEndian.Uint32(b[offEpoch:]),
	}
	if v.ResultCode == Success {
		v.Address = netip.AddrFrom4([addressLen]byte(b[offAddress:]))
	}
	*r = v
	return nil
}

// Err returns nil for Success and a *ResultError otherwise.
func (r ExternalAddressResponse) Err() error { return resultErr(OpExternalAddress, r.ResultCode) }

// MappingRequest asks for, renews or deletes a mapping (RFC 6886 §3.3 and
// §3.4). A renewal is formatted like the first request, with the external
// port the gateway assigned as SuggestedExternalPort (§3.3).
type MappingRequest struct {
	// Opcode is OpMapUDP or OpMapTCP.
	Opcode Opcode
	// InternalPort is "the local port on which the client is listening"
	// (§3.3); zero with a zero Lifetime deletes all of the client's
	// mappings of that protocol (§3.4).
	InternalPort uint16
	// SuggestedExternalPort is the external port the client would like,
	// zero for any (§3.3). In a deletion it "MUST be set to zero by the
	// client on sending, and MUST be ignored by the gateway on reception"
	// (§3.4).
	SuggestedExternalPort uint16
	// Lifetime is the requested lifetime in seconds; "The RECOMMENDED Port
	// Mapping Lifetime is 7200 seconds" (§3.3). Zero asks for deletion
	// (§3.4).
	Lifetime uint32
}

// IsDelete reports whether r asks to delete a mapping: RFC 6886 §3.4,
// "with the Requested Lifetime in Seconds set to zero".
func (r MappingRequest) IsDelete() bool { return r.Lifetime == 0 }

// IsDeleteAll reports whether r asks to delete all of the client's mappings
// of its protocol: RFC 6886 §3.4, "with the external port, internal port,
// and lifetime set to zero" (the external port being ignored on reception).
func (r MappingRequest) IsDeleteAll() bool { return r.Lifetime == 0 && r.InternalPort == 0 }

// AppendBinary appends the 12-byte request of RFC 6886 §3.3 to b:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------+---------------+-------------------------------+
//	| version = 0   | opcode 1 or 2 | reserved = 0                  |
//	+---------------+---------------+-------------------------------+
//	| internal port                 | suggested external port       |
//	+-------------------------------+-------------------------------+
//	| requested lifetime in seconds (0: delete, §3.4)               |
//	+---------------------------------------------------------------+
//
// An Opcode other than OpMapUDP or OpMapTCP leaves b unchanged and returns
// ErrOpcode.
func (r MappingRequest) AppendBinary(b []byte) ([]byte, error) {
	if !r.Opcode.isMapping() {
		return b, ErrOpcode
	}
	b = append(b, Version, byte(r.Opcode), 0, 0)
	b = binary.BigEndian.AppendUint16(b, r.InternalPort)
	b = binary.BigEndian.AppendUint16(b, r.SuggestedExternalPort)
	return binary.BigEndian.AppendUint32(b, r.Lifetime), nil
}

// MarshalBinary returns the request of RFC 6886 §3.3.
func (r MappingRequest) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, MappingRequestLen))
}

// UnmarshalBinary decodes the request of RFC 6886 §3.3, which must be
// exactly MappingRequestLen bytes. The reserved field is ignored (§3.3:
// "MUST be ignored on reception").
func (r *MappingRequest) UnmarshalBinary(b []byte) error {
	if err := checkRequestHeader(b); err != nil {
		return err
	}
	op := Opcode(b[offOpcode])
	if !op.isMapping() {
		return ErrOpcode
	}
	if err := checkLen(b, MappingRequestLen); err != nil {
		return err
	}
	*r = MappingRequest{
		Opcode:                op,
		InternalPort:          binary.BigEndian.Uint16(b[offReqInternalPort:]),
		SuggestedExternalPort: binary.BigEndian.Uint16(b[offReqSuggestedPort:]),
		Lifetime:              binary.BigEndian.Uint32(b[offReqLifetime:]),
	}
	return nil
}

// MappingResponse answers a MappingRequest (RFC 6886 §3.3). A successful
// deletion has ExternalPort and Lifetime zero (§3.4); a failure carries the
// request's InternalPort, and ExternalPort and Lifetime are "zero if no
// successful port mapping was created" (§3.5).
type MappingResponse struct {
	// Opcode is the request's OpMapUDP or OpMapTCP ("The 'x' in the OP
	// field MUST match what the client requested", §3.3).
	Opcode Opcode
	// ResultCode is Success or the reason of the failure.
	ResultCode ResultCode
	// Epoch is the Seconds Since Start of Epoch (§3.6).
	Epoch uint32
	// InternalPort is the request's internal port.
	InternalPort uint16
	// ExternalPort is the mapped external port.
	ExternalPort uint16
	// Lifetime is the granted lifetime in seconds.
	Lifetime uint32
}

// AppendBinary appends the 16-byte response of RFC 6886 §3.3 to b:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------+---------------+-------------------------------+
//	| version = 0   | opcode 129/130| result code                   |
//	+---------------+---------------+-------------------------------+
//	| seconds since start of epoch                                  |
//	+-------------------------------+-------------------------------+
//	| internal port                 | mapped external port          |
//	+-------------------------------+-------------------------------+
//	| lifetime in seconds                                           |
//	+---------------------------------------------------------------+
//
// An Opcode other than OpMapUDP or OpMapTCP leaves b unchanged and returns
// ErrOpcode.
func (r MappingResponse) AppendBinary(b []byte) ([]byte, error) {
	if !r.Opcode.isMapping() {
		return b, ErrOpcode
	}
	b = appendResponseHeader(b, r.Opcode, r.ResultCode, r.Epoch)
	b = binary.BigEndian.AppendUint16(b, r.InternalPort)
	b = binary.BigEndian.AppendUint16(b, r.ExternalPort)
	return binary.BigEndian.AppendUint32(b, r.Lifetime), nil
}

// MarshalBinary returns the response of RFC 6886 §3.3.
func (r MappingResponse) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, MappingResponseLen))
}

// UnmarshalBinary decodes the response of RFC 6886 §3.3, which must be
// exactly MappingResponseLen bytes. A version 2 packet yields ErrPCPServer.
func (r *MappingResponse) UnmarshalBinary(b []byte) error {
	if err := checkResponseHeader(b); err != nil {
		return err
	}
	op := Opcode(b[offOpcode]) &^ ResponseBit
	if !op.isMapping() {
		return ErrOpcode
	}
	if err := checkLen(b, MappingResponseLen); err != nil {
		return err
	}
	*r = MappingResponse{
		Opcode:       op,
		ResultCode:   ResultCode(binary.BigEndian.Uint16(b[offResult:])),
		Epoch:        binary.BigEndian.Uint32(b[offEpoch:]),
		InternalPort: binary.BigEndian.Uint16(b[offRespInternalPort:]),
		ExternalPort: binary.BigEndian.Uint16(b[offRespExternalPort:]),
		Lifetime:     binary.BigEndian.Uint32(b[offRespLifetime:]),
	}
	return nil
}

// Err returns nil for Success and a *ResultError otherwise.
func (r MappingResponse) Err() error { return resultErr(r.Opcode, r.ResultCode) }

// ResponseHeader is the part every response starts with (RFC 6886 §3:
// "Responses always contain a 16-bit result code ... Responses also contain
// a 32-bit unsigned integer corresponding to the number of seconds since the
// NAT gateway was rebooted"). On its own it is the "Unsupported Version"
// response of §3.5.
type ResponseHeader struct {
	// Opcode is the opcode of the request answered, without ResponseBit.
	Opcode Opcode
	// ResultCode is Success or the reason of the failure.
	ResultCode ResultCode
	// Epoch is the Seconds Since Start of Epoch (§3.6).
	Epoch uint32
}

// AppendBinary appends the 8-byte header of RFC 6886 §3 to b; alone it is
// the "Unsupported Version" response of §3.5 (opcode 128 in the figure as
// corrected by erratum 3618, for request opcode 0):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------+---------------+-------------------------------+
//	| version = 0   | 128 + opcode  | result code                   |
//	+---------------+---------------+-------------------------------+
//	| seconds since start of epoch                                  |
//	+---------------------------------------------------------------+
//
// An Opcode with ResponseBit set leaves b unchanged and returns ErrOpcode.
func (h ResponseHeader) AppendBinary(b []byte) ([]byte, error) {
	if h.Opcode.IsResponse() {
		return b, ErrOpcode
	}
	return appendResponseHeader(b, h.Opcode, h.ResultCode, h.Epoch), nil
}

// MarshalBinary returns the 8-byte header of RFC 6886 §3.
func (h ResponseHeader) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, ResponseHeaderLen))
}

// UnmarshalBinary decodes the first ResponseHeaderLen bytes of any response;
// being a prefix, b may be longer. A version 2 packet yields ErrPCPServer.
func (h *ResponseHeader) UnmarshalBinary(b []byte) error {
	if err := checkResponseHeader(b); err != nil {
		return err
	}
	if len(b) < ResponseHeaderLen {
		return ErrShortPacket
	}
	*h = ResponseHeader{
		Opcode:     Opcode(b[offOpcode]) &^ ResponseBit,
		ResultCode: ResultCode(binary.BigEndian.Uint16(b[offResult:])),
		Epoch:      binary.BigEndian.Uint32(b[offEpoch:]),
	}
	return nil
}

// Err returns nil for Success and a *ResultError otherwise.
func (h ResponseHeader) Err() error { return resultErr(h.Opcode, h.ResultCode) }
