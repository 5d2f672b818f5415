package statefile

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/portlease/portlease/gateway"
)

// image is what a file's bytes hold once replayed.
type image struct {
	leases  map[key]gateway.Lease
	meta    Meta
	hasMeta bool
	damage  []Damage
	// unreadable is set when the header is wrong: nothing was kept.
	unreadable bool
}

// replay decodes a whole file, applying its records in order: a later put
// of a key replaces the earlier one and a remove deletes it. What cannot be
// read is skipped and described in damage; replay never fails.
func replay(b []byte) image {
	img := image{leases: make(map[key]gateway.Lease)}
	if len(b) == 0 {
		return img
	}
	if reason := checkHeader(b); reason != "" {
		img.unreadable = true
		img.damage = append(img.damage, Damage{Offset: 0, Length: int64(len(b)), Reason: reason})
		return img
	}
	for pos := headerLen; pos < len(b); {
		r, size, err := parseRecord(b[pos:])
		if err != nil {
			next := resync(b, pos, err)
			img.damage = append(img.damage, Damage{Offset: int64(pos), Length: int64(next - pos), Reason: err.Error()})
			pos = next
			continue
		}
		switch r.typ {
		case recPut, recPutExt:
			img.leases[r.key] = r.lease
		case recRemove, recRemovePinhole:
			delete(img.leases, r.key)
		case recMeta:
			img.meta, img.hasMeta = r.meta, true
		}
		pos += size
	}
	return img
}

// checkHeader returns why the file header of b is not ours, or "".
func checkHeader(b []byte) string {
	switch {
	case len(b) < headerLen:
		return "file header cut short"
	case string(b[offMagic:offMagic+len(magic)]) != magic:
		return "not a portleased state file (bad magic)"
	case binary.BigEndian.Uint32(b[offVer:]) != version:
		return fmt.Sprintf("unknown format version %d", binary.BigEndian.Uint32(b[offVer:]))
	}
	return ""
}

// resync returns where reading goes on after the bad record at pos: the end
// of that record when its length is plausible and a good record (or the end
// of the file) follows it, so that only that record is lost; otherwise the
// next offset at which a record validates, or the end of the file.
func resync(b []byte, pos int, err error) int {
	if err == errChecksum || err == errType || err == errPayload {
		end := pos + recHeaderLen + int(binary.BigEndian.Uint32(b[pos+offRecLen:]))
		if end == len(b) {
			return end
		}
		if _, _, err := parseRecord(b[end:]); err == nil {
			return end
		}
	}
	for next := pos + 1; next < len(b); next++ {
		if _, _, err := parseRecord(b[next:]); err == nil {
			return next
		}
	}
	return len(b)
}

// live returns the leases of img not yet ended at now (a zero Expires is
// permanent), ordered by protocol and external port, pinholes last by
// UniqueID, and how many ended.
func (img *image) live(now time.Time) ([]gateway.Lease, int) {
	out := make([]gateway.Lease, 0, len(img.leases))
	expired := 0
	for _, l := range img.leases {
		if !l.Expires.IsZero() && !now.Before(l.Expires) {
			expired++
			continue
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b gateway.Lease) int {
		return cmp.Compare(leaseKey(&a), leaseKey(&b))
	})
	return out, expired
}
