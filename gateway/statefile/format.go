package statefile

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/portlease/portlease/gateway"
)

// The file header: magic and format version.
const (
	magic     = "PLLEASES"
	version   = 1
	offMagic  = 0
	offVer    = offMagic + len(magic)
	headerLen = offVer + 4 // 12
)

// The record header: length of the payload, CRC-32C of type and payload,
// type.
const (
	offRecLen     = 0
	offRecCRC     = offRecLen + 4
	offRecType    = offRecCRC + 4
	recHeaderLen  = offRecType + 1 // 9
	crcCoverStart = offRecType     // the checksum covers type and payload
)

// recordType says what a record holds.
type recordType uint8

// The record types.
const (
	recPut    recordType = 1 // a lease granted or changed: the whole lease
	recRemove recordType = 2 // a lease removed: its protocol and external port
	recMeta   recordType = 3 // the epoch start and the UPnP boot ID
	// recPutExt is a put with a pinhole ID and filters; leases without
	// them are written as recPut, which every reader knows.
	recPutExt recordType = 4
	// recRemovePinhole is a pinhole removed: its protocol and UniqueID.
	recRemovePinhole recordType = 5
)

// The put payload: fixed fields, then the description.
const (
	offPutProto    = 0
	offPutOrigin   = offPutProto + 1
	offPutFlags    = offPutOrigin + 1
	offPutReserved = offPutFlags + 1
	offPutEPort    = offPutReserved + 1
	offPutIPort    = offPutEPort + 2
	offPutIAddr    = offPutIPort + 2
	offPutRPort    = offPutIAddr + 16
	offPutRAddr    = offPutRPort + 2
	offPutNonce    = offPutRAddr + 16
	offPutCreated  = offPutNonce + 12
	offPutExpires  = offPutCreated + 8
	offPutDescLen  = offPutExpires + 8
	putFixedLen    = offPutDescLen + 2 // 72
)

// Flags of a put record: which addresses are set and which are IPv4. An
// address that is not IPv4 is IPv6 (an IPv4-mapped one stays mapped).
const (
	flagInternal   = 1 << 0
	flagInternal4  = 1 << 1
	flagRemote     = 1 << 2
	flagRemote4    = 1 << 3
	flagPinhole    = 1 << 4 // recPutExt only
	flagsKnown     = flagInternal | flagInternal4 | flagRemote | flagRemote4
	maxDescription = 1024 // bytes; longer descriptions are cut (Commit)
)

// The extension of a recPutExt payload, after the fixed part and before
// the description: the pinhole ID, the number of filters, and each filter.
const (
	offExtPinholeID = 0
	offExtFilters   = offExtPinholeID + 2
	extLen          = offExtFilters + 2 // 4

	offFilterFlags = 0 // filterIPv4
	offFilterBits  = offFilterFlags + 1
	offFilterPort  = offFilterBits + 1
	offFilterAddr  = offFilterPort + 2
	filterLen      = offFilterAddr + 16 // 20

	filterIPv4 = 1 << 0
)

// The remove and meta payloads.
const (
	offRemoveProto = 0
	offRemoveEPort = offRemoveProto + 1
	removeLen      = offRemoveEPort + 2 // 3

	offMetaEpoch  = 0
	offMetaBootID = offMetaEpoch + 8
	metaLen       = offMetaBootID + 4 // 12
)

// The bounds of a record's payload length: anything else is implausible.
const (
	minPayload = removeLen
	maxPayload = putFixedLen + extLen + gateway.MaxFilters*filterLen + maxDescription
	maxRecord  = recHeaderLen + maxPayload
)

// Reasons a record is refused, as Damage.Reason says them.
var (
	errShortHeader = errors.New("statefile: record header cut short")
	errLength      = errors.New("statefile: implausible record length")
	errTorn        = errors.New("statefile: record cut short")
	errChecksum    = errors.New("statefile: bad checksum")
	errType        = errors.New("statefile: unknown record type")
	errPayload     = errors.New("statefile: malformed record payload")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// key identifies a lease: its protocol and external port, unique in the
// table, or for a pinhole its UniqueID (with keyPinhole set).
type key uint32

const keyPinhole key = 1 << 24

func keyOf(p gateway.Protocol, eport uint16) key { return key(p)<<16 | key(eport) }

func pinholeKey(id uint16) key { return keyPinhole | key(id) }

// leaseKey returns the key of l.
func leaseKey(l *gateway.Lease) key {
	if l.Pinhole {
		return pinholeKey(l.PinholeID)
	}
	return keyOf(l.Protocol, l.ExternalPort)
}

// extended reports whether l needs a recPutExt record.
func extended(l *gateway.Lease) bool {
	return l.Pinhole || l.PinholeID != 0 || len(l.Filters) > 0
}

// putSize returns the size of the put record of l.
func putSize(l *gateway.Lease) int {
	n := recHeaderLen + putFixedLen + len(cutDescription(l.Description))
	if extended(l) {
		n += extLen + filterLen*len(l.Filters)
	}
	return n
}

func (k key) protocol() gateway.Protocol { return gateway.Protocol(k >> 16) }
func (k key) port() uint16               { return uint16(k) }

// appendHeader appends the 12-byte file header:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------------------------------------------------------+
//	| magic "PLLEASES" (8 bytes)                                    |
//	+---------------------------------------------------------------+
//	| format version = 1                                            |
//	+---------------------------------------------------------------+
func appendHeader(b []byte) []byte {
	b = append(b, magic...)
	return binary.BigEndian.AppendUint32(b, version)
}

// beginRecord appends a record header of type t with length and checksum
// left to endRecord, and returns where the record starts.
func beginRecord(b []byte, t recordType) ([]byte, int) {
	start := len(b)
	b = append(b, make([]byte, recHeaderLen)...)
	b[start+offRecType] = byte(t)
	return b, start
}

// endRecord fills in the length and checksum of the record at start.
func endRecord(b []byte, start int) []byte {
	rec := b[start:]
	binary.BigEndian.PutUint32(rec[offRecLen:], uint32(len(rec)-recHeaderLen))
	binary.BigEndian.PutUint32(rec[offRecCRC:], crc32.Checksum(rec[crcCoverStart:], castagnoli))
	return b
}

// appendPut appends the record of a lease granted or changed:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------------------------------------------------------+
//	| payload length (72 + description length)                      |
//	+---------------------------------------------------------------+
//	| CRC-32C (Castagnoli) of type and payload                      |
//	+---------------+-----------------------------------------------+
//	| type = 1      | protocol      | origin        | flags         |
//	+---------------+---------------+---------------+---------------+
//	| reserved = 0  | external port                 | internal ...  |
//	+---------------+-------------------------------+---------------+
//	| ... port      | internal address (16 bytes, IPv4 in the last 4)
//	+---------------+-----------------------------------------------+
//	  ...                                           | remote port   |
//	+-----------------------------------------------+---------------+
//	| ...           | remote address (16 bytes)                     |
//	+---------------+-----------------------------------------------+
//	  ...                                           | nonce (12 ... |
//	+-----------------------------------------------+---------------+
//	  ...                                           | created (Unix |
//	+-----------------------------------------------+---------------+
//	  nanoseconds, signed, 0 for the zero time)     | expires (Unix |
//	+-----------------------------------------------+---------------+
//	  nanoseconds, 0 = permanent)                   | description   |
//	+-----------------------------------------------+---------------+
//	| ... length    | description (UTF-8 as given, at most 1024 bytes)
//	+---------------+-----------------------------------------------+
//
// Flags: 1 internal endpoint set, 2 internal address IPv4, 4 remote set,
// 8 remote address IPv4. A description longer than maxDescription is cut
// there, at the start of the character it would split.
//
// A lease with a pinhole ID or filters is written as type 4 instead: the
// same fixed part, remote unset, flag 16 for a pinhole, then before the
// description:
//
//	+-------------------------------+-------------------------------+
//	| pinhole ID (0: none)          | number of filters N (0-64)    |
//	+---------------+---------------+-------------------------------+
//	| N filters of 20 bytes: flags (1: IPv4), prefix length, port   |
//	| (0: any), address (16 bytes, IPv4 mapped) ...                 |
//	+---------------------------------------------------------------+
//
// A type-1 record's remote peer is read as one filter of its address
// (/32 or /128) and port. An older portleased skips type 4 records as
// damaged, losing those leases but no others.
func appendPut(b []byte, l *gateway.Lease) []byte {
	typ := recPut
	if extended(l) {
		typ = recPutExt
	}
	b, start := beginRecord(b, typ)
	var fixed [putFixedLen]byte
	fixed[offPutProto] = byte(l.Protocol)
	fixed[offPutOrigin] = byte(l.Origin)
	var flags byte
	if l.Internal.IsValid() {
		flags |= flagInternal
		if l.Internal.Addr().Is4() {
			flags |= flagInternal4
		}
		a := l.Internal.Addr().As16()
		copy(fixed[offPutIAddr:], a[:])
		binary.BigEndian.PutUint16(fixed[offPutIPort:], l.Internal.Port())
	}
	if l.Pinhole {
		flags |= flagPinhole
	}
	fixed[offPutFlags] = flags
	binary.BigEndian.PutUint16(fixed[offPutEPort:], l.ExternalPort)
	copy(fixed[offPutNonce:], l.Nonce[:])
	binary.BigEndian.PutUint64(fixed[offPutCreated:], uint64(unixNano(l.Created)))
	binary.BigEndian.PutUint64(fixed[offPutExpires:], uint64(unixNano(l.Expires)))
	desc := cutDescription(l.Description)
	binary.BigEndian.PutUint16(fixed[offPutDescLen:], uint16(len(desc)))
	b = append(b, fixed[:]...)
	if typ == recPutExt {
		b = binary.BigEndian.AppendUint16(b, l.PinholeID)
		b = binary.BigEndian.AppendUint16(b, uint16(len(l.Filters)))
		for _, f := range l.Filters {
			var fb [filterLen]byte
			if f.Remote.Addr().Is4() {
				fb[offFilterFlags] = filterIPv4
			}
			fb[offFilterBits] = byte(f.Remote.Bits())
			binary.BigEndian.PutUint16(fb[offFilterPort:], f.Port)
			a := f.Remote.Addr().As16()
			copy(fb[offFilterAddr:], a[:])
			b = append(b, fb[:]...)
		}
	}
	b = append(b, desc...)
	return endRecord(b, start)
}

// appendRemove appends the record of a lease removed:
//
//	+---------------------------------------------------------------+
//	| payload length = 3                                            |
//	+---------------------------------------------------------------+
//	| CRC-32C of type and payload                                   |
//	+---------------+---------------+-------------------------------+
//	| type = 2      | protocol      | external port                 |
//	+---------------+---------------+-------------------------------+
//
// A pinhole's is type 5, with its protocol and UniqueID in place of the
// external port.
func appendRemove(b []byte, l *gateway.Lease) []byte {
	typ, n := recRemove, l.ExternalPort
	if l.Pinhole {
		typ, n = recRemovePinhole, l.PinholeID
	}
	b, start := beginRecord(b, typ)
	b = append(b, byte(l.Protocol))
	b = binary.BigEndian.AppendUint16(b, n)
	return endRecord(b, start)
}

// appendMeta appends the record of the state's meta data:
//
//	+---------------------------------------------------------------+
//	| payload length = 12                                           |
//	+---------------------------------------------------------------+
//	| CRC-32C of type and payload                                   |
//	+---------------+-----------------------------------------------+
//	| type = 3      | epoch start (Unix nanoseconds, 0 = unset) ... |
//	+---------------+-----------------------------------------------+
//	  ...                                           | BOOTID ...    |
//	+-----------------------------------------------+---------------+
//	  ...                                           |
//	+-----------------------------------------------+
func appendMeta(b []byte, m Meta) []byte {
	b, start := beginRecord(b, recMeta)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(m.EpochStart)))
	b = binary.BigEndian.AppendUint32(b, m.BootID)
	return endRecord(b, start)
}

// cutDescription returns d cut to maxDescription bytes, at the start of a
// character it would split.
func cutDescription(d string) string {
	if len(d) <= maxDescription {
		return d
	}
	n := maxDescription
	for n > 0 && !utf8.RuneStart(d[n]) {
		n--
	}
	return d[:n]
}

// unixNano returns t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of unixNano.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// record is one decoded record.
type record struct {
	typ   recordType
	key   key           // of a put or a remove
	lease gateway.Lease // of a put
	meta  Meta          // of a meta record
}

// parseRecord decodes the record at the start of b and returns its total
// size. It checks the length, the checksum and the payload's shape.
func parseRecord(b []byte) (record, int, error) {
	if len(b) < recHeaderLen {
		return record{}, 0, errShortHeader
	}
	n := binary.BigEndian.Uint32(b[offRecLen:])
	if n < minPayload || n > maxPayload {
		return record{}, 0, errLength
	}
	size := recHeaderLen + int(n)
	if len(b) < size {
		return record{}, 0, errTorn
	}
	rec := b[:size]
	if crc32.Checksum(rec[crcCoverStart:], castagnoli) != binary.BigEndian.Uint32(rec[offRecCRC:]) {
		return record{}, 0, errChecksum
	}
	payload := rec[recHeaderLen:]
	var r record
	var err error
	switch r.typ = recordType(rec[offRecType]); r.typ {
	case recPut, recPutExt:
		err = parsePut(payload, &r)
	case recRemove, recRemovePinhole:
		if len(payload) != removeLen {
			err = errPayload
			break
		}
		n := binary.BigEndian.Uint16(payload[offRemoveEPort:])
		r.key = keyOf(gateway.Protocol(payload[offRemoveProto]), n)
		if r.typ == recRemovePinhole {
			r.key = pinholeKey(n)
		}
	case recMeta:
		if len(payload) != metaLen {
			err = errPayload
			break
		}
		r.meta = Meta{
			EpochStart: fromUnixNano(int64(binary.BigEndian.Uint64(payload[offMetaEpoch:]))),
			BootID:     binary.BigEndian.Uint32(payload[offMetaBootID:]),
		}
	default:
		err = errType
	}
	if err != nil {
		return record{}, 0, err
	}
	return r, size, nil
}

// parsePut decodes the payload of a put record into r. Only what
// appendPut writes is accepted, so that a lease read back encodes to the
// same bytes.
func parsePut(p []byte, r *record) error {
	if len(p) < putFixedLen {
		return errPayload
	}
	flags := p[offPutFlags]
	known := byte(flagsKnown)
	if r.typ == recPutExt {
		known = flagInternal | flagInternal4 | flagPinhole
	}
	descLen := int(binary.BigEndian.Uint16(p[offPutDescLen:]))
	if flags&^known != 0 || p[offPutReserved] != 0 || descLen > maxDescription || len(p) < putFixedLen+descLen {
		return errPayload
	}
	ext := p[putFixedLen : len(p)-descLen]
	l := &r.lease
	if r.typ == recPutExt {
		if err := parseExt(ext, l, flags&flagPinhole != 0); err != nil {
			return err
		}
	} else if len(ext) != 0 {
		return errPayload
	}
	internal, ok := parseEndpoint(p[offPutIAddr:offPutIAddr+16], p[offPutIPort:], flags&flagInternal != 0, flags&flagInternal4 != 0)
	if !ok {
		return errPayload
	}
	remote, ok := parseEndpoint(p[offPutRAddr:offPutRAddr+16], p[offPutRPort:], flags&flagRemote != 0, flags&flagRemote4 != 0)
	if !ok {
		return errPayload
	}
	l.Protocol = gateway.Protocol(p[offPutProto])
	l.Origin = gateway.Origin(p[offPutOrigin])
	l.ExternalPort = binary.BigEndian.Uint16(p[offPutEPort:])
	l.Internal = internal
	if remote.IsValid() {
		l.Filters = []gateway.Filter{{Remote: netip.PrefixFrom(remote.Addr(), remote.Addr().BitLen()), Port: remote.Port()}}
	}
	l.Nonce = [12]byte(p[offPutNonce:])
	l.Created = fromUnixNano(int64(binary.BigEndian.Uint64(p[offPutCreated:])))
	l.Expires = fromUnixNano(int64(binary.BigEndian.Uint64(p[offPutExpires:])))
	l.Description = string(p[len(p)-descLen:])
	r.key = leaseKey(l)
	return nil
}

// parseExt decodes the extension of a recPutExt payload into l, exactly:
// no bytes left over, a pinhole ID set exactly for a pinhole, masked
// prefixes of a plausible length, and what appendPut writes only.
func parseExt(ext []byte, l *gateway.Lease, pinhole bool) error {
	if len(ext) < extLen {
		return errPayload
	}
	l.Pinhole = pinhole
	l.PinholeID = binary.BigEndian.Uint16(ext[offExtPinholeID:])
	n := int(binary.BigEndian.Uint16(ext[offExtFilters:]))
	if pinhole != (l.PinholeID != 0) || n > gateway.MaxFilters || len(ext) != extLen+n*filterLen ||
		!pinhole && n == 0 {
		return errPayload
	}
	if n > 0 {
		l.Filters = make([]gateway.Filter, n)
	}
	for i := range l.Filters {
		fb := ext[extLen+i*filterLen:][:filterLen]
		flags := fb[offFilterFlags]
		a := netip.AddrFrom16([16]byte(fb[offFilterAddr:]))
		if flags&^filterIPv4 != 0 {
			return errPayload
		}
		if flags&filterIPv4 != 0 {
			if !a.Is4In6() {
				return errPayload
			}
			a = a.Unmap()
		}
		pfx := netip.PrefixFrom(a, int(fb[offFilterBits]))
		if !pfx.IsValid() || pfx.Masked() != pfx {
			return errPayload
		}
		l.Filters[i] = gateway.Filter{Remote: pfx, Port: binary.BigEndian.Uint16(fb[offFilterPort:])}
	}
	return nil
}

// parseEndpoint decodes an address and port of a put record. An unset
// endpoint must be all zeros and an IPv4 one must be IPv4-mapped.
func parseEndpoint(addr, port []byte, set, is4 bool) (netip.AddrPort, bool) {
	p := binary.BigEndian.Uint16(port)
	if !set {
		return netip.AddrPort{}, !is4 && p == 0 && [16]byte(addr) == [16]byte{}
	}
	a := netip.AddrFrom16([16]byte(addr))
	if is4 {
		if !a.Is4In6() {
			return netip.AddrPort{}, false
		}
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, p), true
}
