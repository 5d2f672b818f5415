package pcp

import "encoding/binary"

// AppendBinary appends the response in the layout of §7.2 (Figure 3),
// followed by its opcode's data (Map for MAP, Peer for PEER, none for
// ANNOUNCE) and options, to b:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Version = 2  |R=1| Opcode    | Reserved = 0  |  Result Code  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Lifetime (32 bits)                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Epoch Time (32 bits)                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Reserved (96 bits) = 0                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	:             (optional) Opcode-specific response data          :
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	:             (optional) Options                                :
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Options are encoded as they are: which ones a response repeats is the
// server's choice (§13.1-13.3 and RFC 7220: each "MAY appear in response
// only if it appeared in the associated request"). On error b is returned
// unchanged, with the errors of Request.AppendBinary.
func (r Response) AppendBinary(b []byte) ([]byte, error) {
	if _, ok := dataLen(r.Opcode); !ok {
		return b, ErrOpcode
	}
	start := len(b)
	b = append(b, Version, byte(r.Opcode|ResponseBit), 0, byte(r.Result))
	b = binary.BigEndian.AppendUint32(b, r.Lifetime)
	b = binary.BigEndian.AppendUint32(b, r.Epoch)
	var reserved [HeaderLen - offRespReserved2]byte
	b = append(b, reserved[:]...)
	b = appendOpData(b, r.Opcode, r.Map, r.Peer)
	b, err := appendOptions(b, r.Opcode, r.Options)
	return endMessage(b, start, err)
}

// MarshalBinary returns the response of §7.2.
func (r Response) MarshalBinary() ([]byte, error) {
	n, _ := dataLen(r.Opcode)
	return r.AppendBinary(make([]byte, 0, HeaderLen+n))
}

// UnmarshalBinary decodes a response as a client must. It needs the R bit
// (ErrNotResponse), version 2 (ErrVersion: a NAT-PMP gateway answers with
// version 0, a server of another PCP version with its own, §9), the length
// rules of §7 (ErrShortPacket, ErrLongPacket, ErrNotMultipleOf4) and a
// known opcode (ErrOpcode).
//
// A successful response needs its opcode's whole data and well-formed
// options (ErrShortPacket, ErrOption). An error response is the request
// copied back (§8.3), possibly cut short or carrying the very option that
// was refused, so its data is read only when complete and its options only
// when they decode; otherwise Map, Peer or Options stay zero. Unknown
// options, mandatory or not, are ignored (§7.3: "PCP clients MUST ignore
// Options that they do not understand that appear in responses"). On error
// r is left unchanged.
func (r *Response) UnmarshalBinary(b []byte) error {
	switch {
	case len(b) < HeaderLen:
		return ErrShortPacket
	case Opcode(b[offOpcode])&ResponseBit == 0:
		return ErrNotResponse
	case b[offVersion] != Version:
		return ErrVersion
	}
	if err := checkMessageLen(b); err != nil {
		return err
	}
	op := Opcode(b[offOpcode]) &^ ResponseBit
	n, ok := dataLen(op)
	if !ok {
		return ErrOpcode
	}
	v := Response{
		Opcode:   op,
		Result:   ResultCode(b[offResult]),
		Lifetime: binary.BigEndian.Uint32(b[offRespLifetime:]),
		Epoch:    binary.BigEndian.Uint32(b[offEpoch:]),
	}
	if len(b) < HeaderLen+n {
		if v.Result == Success {
			return ErrShortPacket
		}
		*r = v
		return nil
	}
	decodeOpData(b[HeaderLen:], op, &v.Map, &v.Peer)
	o, err := optionsDecoder{op: op, response: true}.decode(b[HeaderLen+n:])
	if err != nil && v.Result == Success {
		return err
	}
	if err == nil {
		v.Options = o
	}
	*r = v
	return nil
}
