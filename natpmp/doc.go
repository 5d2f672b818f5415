// Package natpmp is the wire format of the NAT Port Mapping Protocol,
// RFC 6886 (NAT-PMP), for both ends: the gateway that answers requests and
// announces its address, and the client that asks for mappings. It opens no
// sockets and keeps no state; it turns packets into values and back.
//
// # Messages
//
// There is one type per message of the RFC, each with an append-style
// AppendBinary and a strict UnmarshalBinary that wants the exact length:
//
//	ExternalAddressRequest   2 bytes   §3.2
//	ExternalAddressResponse 12 bytes   §3.2, also the announcement of §3.2.1
//	MappingRequest          12 bytes   §3.3, and deletion §3.4
//	MappingResponse         16 bytes   §3.3, §3.4
//	ResponseHeader           8 bytes   §3, the "Unsupported Version" reply of §3.5
//
// Opcodes and result codes are the typed constants Opcode and ResultCode.
// Values hold the request's opcode (OpMapUDP, not 129); encoders set
// ResponseBit on responses and decoders clear it.
//
// # Gateway side
//
// ParseRequest decodes what a client sent. When it refuses a packet it
// returns a *RequestError saying whether to answer and with which result
// code, and AppendErrorResponse builds that answer:
//
//   - shorter than the 2-byte version and opcode header: silence. RFC 6886
//     §3 says every packet starts with those two bytes; without them there
//     is no opcode to answer.
//   - ResponseBit set in the opcode, whatever the version: silence (§3.5,
//     "this is not a request; it's a response, and the NAT-PMP server MUST
//     silently ignore it"). This is checked before the version so that two
//     gateways never answer each other's answers.
//   - version other than 0: result 1, UnsupportedVersion, in the 8-byte
//     response of §3.5. Its figure, as corrected by verified erratum 3618,
//     shows opcode 128, drawn for a request with opcode 0; like every other
//     response (§3: "Opcodes from 128 to 255 are corresponding server
//     responses") the opcode here is 128 + the request's opcode.
//   - version 0, opcode 3 to 127: result 5, UnsupportedOpcode, and "the
//     entire request MUST be returned to the sender, with the top bit of the
//     opcode set" (§3.5). The echo's first 8 bytes are overwritten by the
//     response header (§3: "Responses always contain a 16-bit result code ...
//     Responses also contain a 32-bit" epoch; §3.6: every packet from the
//     gateway carries it), so the epoch a client checks is never the client's
//     own bytes; a request shorter than 8 bytes is padded with zeros.
//   - version 0, opcode 0, 1 or 2 but the wrong length: RFC 6886 sets no
//     rule. The packet does not have the shape of the operation it names, so
//     it gets result 5, UnsupportedOpcode, the nearest code the RFC offers
//     (result 1 would tell the client to give up on version 0 altogether).
//     The answer has the normal response size of that opcode, as §3.5 asks of
//     every failed request with a supported opcode: 12 bytes with address
//     0.0.0.0 for opcode 0 (§3.2), 16 bytes with the request's internal port
//     for mappings ("The Internal Port MUST be set to the client's requested
//     Internal Port"), or port 0 when the request is too short to hold it.
//
// Failures of a well-formed request (NotAuthorized, NetworkFailure,
// OutOfResources) are the lease core's business; the front-end reports them
// with the ordinary response types, or with AppendErrorResponse.
//
// AnnounceIntervals gives the schedule of the ten address announcements of
// §3.2.1, sent to AnnounceAddr.
//
// # Client side
//
// ParseResponse decodes what a gateway sent, accepting the shorter error
// replies of §3.5. A non-zero result code is not a decoding error: the
// response still tells which request failed and the gateway's epoch. Its Err
// method turns the code into a *ResultError. A version 2 packet means a
// PCP-only server answered (RFC 6887 §9) and yields ErrPCPServer.
// RetransmitIntervals is the retry schedule of §3.1 and StateLost the epoch
// check of §3.6.
package natpmp
