package upnpsrv

import (
	"net/netip"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Bounds of the walk cursors.
const (
	// walkTTL is how long a cursor is kept: a control point lists the
	// table in a burst of requests.
	walkTTL = 2 * time.Minute
	// maxWalks bounds the cursors kept over all clients.
	maxWalks = 4096
)

// walkKey names the answer given to a client for an index.
type walkKey struct {
	client netip.Addr
	index  int
}

// walkEntry is the mapping answered for a walkKey, and when.
type walkEntry struct {
	key leaseKey
	at  time.Time
}

// walk returns the mapping at index i for client (GetGenericPortMappingEntry).
//
// Control points list the table by asking for index 0, 1, 2, … until 713
// (GetGenericPortMappingEntry). Taken literally, an index is a position in a
// table that changes between two requests: a mapping added before the
// position makes the walk see one mapping twice, a mapping removed before it
// makes the walk miss one. So the server remembers, for each client, which
// mapping it answered for the last indexes; a request for index i after
// index i-1 gets the first mapping after the one answered for i-1, wherever
// it now sits. A walk from 0 to 713 thus sees every mapping that stayed in
// the table exactly once, and the ones added or removed meanwhile at most
// once. Index 0, and an index asked for out of turn, are positions.
func (s *Server) walk(client netip.Addr, i int) (gateway.Lease, bool) {
	now := time.Now()
	var prev walkEntry
	var seq bool
	if i > 0 {
		s.walkMu.Lock()
		prev, seq = s.walks[walkKey{client, i - 1}]
		s.walkMu.Unlock()
		seq = seq && now.Sub(prev.at) < walkTTL
	}
	var l gateway.Lease
	var ok bool
	if seq {
		l, ok = s.table.after(prev.key)
	} else {
		l, ok = s.table.at(i)
	}
	if !ok {
		return l, false
	}
	s.walkMu.Lock()
	defer s.walkMu.Unlock()
	if len(s.walks) >= maxWalks {
		for k, e := range s.walks {
			if now.Sub(e.at) >= walkTTL {
				delete(s.walks, k)
			}
		}
		if len(s.walks) >= maxWalks {
			clear(s.walks)
		}
	}
	// Keep the answers for i and i-1: i-1 serves a retry of i.
	delete(s.walks, walkKey{client, i - 2})
	s.walks[walkKey{client, i}] = walkEntry{key: keyOf(l), at: now}
	return l, true
}
