package pcp

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// dataLen returns the length of op's opcode-specific data and whether this
// package knows op (§7.1: ANNOUNCE has none, §11.1, §12.1).
func dataLen(op Opcode) (int, bool) {
	switch op {
	case OpAnnounce:
		return 0, true
	case OpMap:
		return MapDataLen, true
	case OpPeer:
		return PeerDataLen, true
	}
	return 0, false
}

// checkMessageLen applies §7's length rules: at most MaxMessageLen bytes,
// a multiple of 4.
func checkMessageLen(b []byte) error {
	switch {
	case len(b) > MaxMessageLen:
		return ErrLongPacket
	case len(b)%4 != 0:
		return ErrNotMultipleOf4
	}
	return nil
}

// AppendBinary appends the request in the layout of §7.1 (Figure 2),
// followed by its opcode's data (Map for MAP, Peer for PEER, none for
// ANNOUNCE) and its options, to b:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Version = 2  |R=0| Opcode    |         Reserved = 0          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Requested Lifetime (32 bits)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            PCP Client's IP Address (128 bits)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	:             (optional) Opcode-specific information            :
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	:             (optional) PCP Options                            :
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// On error b is returned unchanged: ErrOpcode for an opcode other than
// ANNOUNCE, MAP and PEER (or with ResponseBit), ErrOption for options the
// opcode does not allow or cannot encode, ErrLongPacket beyond
// MaxMessageLen.
func (r Request) AppendBinary(b []byte) ([]byte, error) {
	if _, ok := dataLen(r.Opcode); !ok {
		return b, ErrOpcode
	}
	start := len(b)
	b = append(b, Version, byte(r.Opcode), 0, 0)
	b = binary.BigEndian.AppendUint32(b, r.Lifetime)
	b = appendAddr(b, r.Client)
	b = appendOpData(b, r.Opcode, r.Map, r.Peer)
	b, err := appendOptions(b, r.Opcode, r.Options)
	return endMessage(b, start, err)
}

// MarshalBinary returns the request of §7.1.
func (r Request) MarshalBinary() ([]byte, error) {
	n, _ := dataLen(r.Opcode)
	return r.AppendBinary(make([]byte, 0, HeaderLen+n))
}

// appendOpData appends the opcode-specific data of MAP (§11.1, Figure 9)
// or PEER (§12.1, Figure 10); ANNOUNCE has none. Requests and responses
// share the layout (Figures 9-10 and 11-12 of §11.1 and §12.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Mapping Nonce (96 bits)                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Protocol    |          Reserved (24 bits) = 0               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Internal Port          |  Suggested/Assigned Ext. Port |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Suggested/Assigned External IP Address (128 bits)         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  PEER: Remote Peer Port       |     Reserved (16 bits) = 0    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          PEER: Remote Peer IP Address (128 bits)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
func appendOpData(b []byte, op Opcode, m MapData, p PeerData) []byte {
	switch op {
	case OpMap:
		return appendMapData(b, m)
	case OpPeer:
		b = appendMapData(b, p.MapData)
		b = binary.BigEndian.AppendUint16(b, p.RemotePort)
		b = append(b, 0, 0)
		return appendAddr(b, p.RemoteAddr)
	}
	return b
}

// appendMapData appends the fields MAP and PEER share.
func appendMapData(b []byte, m MapData) []byte {
	b = append(b, m.Nonce[:]...)
	b = append(b, m.Protocol, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, m.InternalPort)
	b = binary.BigEndian.AppendUint16(b, m.ExternalPort)
	return appendAddr(b, m.ExternalAddr)
}

// decodeMapData reads the fields MAP and PEER share from d, the data after
// the header. Reserved fields are ignored ("MUST be ignored on receipt").
func decodeMapData(d []byte) MapData {
	return MapData{
		Nonce:        [NonceLen]byte(d[offNonce:]),
		Protocol:     d[offProtocol],
		InternalPort: binary.BigEndian.Uint16(d[offInternalPort:]),
		ExternalPort: binary.BigEndian.Uint16(d[offExternalPort:]),
		ExternalAddr: decodeAddr(d[offExternalAddr:]),
	}
}

// decodeOpData reads op's data from d into m or p.
func decodeOpData(d []byte, op Opcode, m *MapData, p *PeerData) {
	switch op {
	case OpMap:
		*m = decodeMapData(d)
	case OpPeer:
		*p = PeerData{
			MapData:    decodeMapData(d),
			RemotePort: binary.BigEndian.Uint16(d[offRemotePort:]),
			RemoteAddr: decodeAddr(d[offRemoteAddr:]),
		}
	}
}

// UnmarshalBinary decodes a request as a server must (§8.3); see
// ParseRequest. Errors are *RequestError with the result code §8.3
// prescribes. On error r is left unchanged.
func (r *Request) UnmarshalBinary(b []byte) error {
	v, err := ParseRequest(b)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// ParseRequest decodes a request as a server must (§8.3), checking in the
// order §8.3 gives:
//
//   - shorter than 2 bytes, or the R bit set: dropped (RequestError with
//     Reply false; §8.3: "silently dropped").
//   - a version other than 2: UNSUPP_VERSION (§9; version 0, NAT-PMP, is
//     for the caller to route elsewhere before calling).
//   - shorter than HeaderLen: dropped (§8.3: "if the version is supported
//     but the received message is shorter than 24 octets, it is silently
//     dropped").
//   - longer than MaxMessageLen or not a multiple of 4: MALFORMED_REQUEST.
//   - an opcode other than ANNOUNCE, MAP and PEER: UNSUPP_OPCODE.
//   - too short for the opcode's data: MALFORMED_REQUEST.
//   - options, in order (§7.3): an unknown mandatory option UNSUPP_OPTION,
//     an unknown optional one ignored (Options.Ignored); an option not
//     valid for the opcode, repeated beyond its maximum, of the wrong
//     length, overrunning the message or with bad contents (FILTER prefix
//     length, DESCRIPTION not UTF-8): MALFORMED_OPTION.
//
// The checks that need the packet's source (ADDRESS_MISMATCH) or policy
// are the server's. The reserved fields are ignored.
func ParseRequest(b []byte) (Request, error) {
	if len(b) < versionLen+opcodeLen {
		return Request{}, &RequestError{Err: ErrShortPacket}
	}
	op := Opcode(b[offOpcode])
	if op&ResponseBit != 0 {
		return Request{}, &RequestError{Op: op &^ ResponseBit, Err: ErrNotRequest}
	}
	refuse := func(code ResultCode, err error) (Request, error) {
		return Request{}, &RequestError{Code: code, Op: op, Reply: true, Err: err}
	}
	if b[offVersion] != Version {
		return refuse(UnsuppVersion, ErrVersion)
	}
	if len(b) < HeaderLen {
		return Request{}, &RequestError{Op: op, Err: ErrShortPacket}
	}
	if err := checkMessageLen(b); err != nil {
		return refuse(MalformedRequest, err)
	}
	n, ok := dataLen(op)
	if !ok {
		return refuse(UnsuppOpcode, ErrOpcode)
	}
	if len(b) < HeaderLen+n {
		return refuse(MalformedRequest, ErrShortPacket)
	}
	r := Request{
		Opcode:   op,
		Lifetime: binary.BigEndian.Uint32(b[offReqLifetime:]),
		Client:   decodeAddr(b[offReqClient:]),
	}
	decodeOpData(b[HeaderLen:], op, &r.Map, &r.Peer)
	o, err := optionsDecoder{op: op}.decode(b[HeaderLen+n:])
	if err != nil {
		if errors.Is(err, ErrUnsupportedOption) {
			return refuse(UnsuppOption, err)
		}
		return refuse(MalformedOption, err)
	}
	r.Options = o
	return r, nil
}

// AppendErrorResponse appends the response a server sends to a request req
// (the raw message) that it refuses with code before or without decoding it
// (§8.3: "For Opcodes that are not understood by the PCP server, it simply
// generates the PCP response header (Figure 3) and copies the remaining PCP
// payload from the request into the response"; for MAP and PEER the same
// copy returns the nonce, protocol, ports and addresses, §11 and §12): req
// copied up to MaxMessageLen bytes and rounded down to a multiple of 4
// (padded with zeros to HeaderLen when shorter), with the response header
// of §7.2 written over its first HeaderLen bytes: version Version (for
// UNSUPP_VERSION §9's "highest version it supports"), the request's opcode
// with the R bit, code, lifetime, epoch, reserved fields zero.
//
// It does not allocate when b has room. req may share memory with b only as
// b = req[:0].
func AppendErrorResponse(b, req []byte, code ResultCode, lifetime, epoch uint32) []byte {
	var op byte
	if len(req) > offOpcode {
		op = req[offOpcode]
	}
	n := min(len(req), MaxMessageLen)
	if n >= HeaderLen {
		n &^= 3
	}
	start := len(b)
	b = append(b, req[:n]...)
	if n < HeaderLen {
		var zero [HeaderLen]byte
		b = append(b, zero[:HeaderLen-n]...)
	}
	h := b[start : start+HeaderLen]
	h[offVersion] = Version
	h[offOpcode] = op | ResponseBit
	h[offRespReserved] = 0
	h[offResult] = byte(code)
	binary.BigEndian.PutUint32(h[offRespLifetime:], lifetime)
	binary.BigEndian.PutUint32(h[offEpoch:], epoch)
	clear(h[offRespReserved2:])
	return b
}

// ClientAddress returns the PCP Client's IP Address field of a request
// (§7.1, Figure 2), for a server comparing it with the packet's source
// (§8.3) when the rest of the request did not decode; the zero Addr when b
// is shorter than a header.
func ClientAddress(b []byte) netip.Addr {
	if len(b) < HeaderLen {
		return netip.Addr{}
	}
	return decodeAddr(b[offReqClient:])
}

// endMessage ends the encoding of a message begun at b[start:]: b, or b
// cut back to start with the error when appending failed or the message
// outgrew MaxMessageLen (§7).
func endMessage(b []byte, start int, err error) ([]byte, error) {
	if err == nil && len(b)-start > MaxMessageLen {
		err = ErrLongPacket
	}
	if err != nil {
		return b[:start], err
	}
	return b, nil
}
