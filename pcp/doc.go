// Package pcp encodes and decodes the messages of the Port Control Protocol,
// version 2 (RFC 6887): the common request and response headers (§7.1,
// §7.2), the opcodes ANNOUNCE (§14.1), MAP (§11.1) and PEER (§12.1), and the
// options THIRD_PARTY (§13.1), PREFER_FAILURE (§13.2), FILTER (§13.3) and
// DESCRIPTION (RFC 7220). It has no sockets: the gateway's front-end
// (gateway/pcpsrv) and the client's driver use it.
//
// Addresses are netip.Addr. On the wire every address field is 128 bits; an
// IPv4 address travels as an IPv4-mapped IPv6 address (§5) and is decoded
// back to a plain IPv4 netip.Addr.
package pcp
