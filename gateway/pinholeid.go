package gateway

// pinholeIDs hands out the UniqueIDs of pinholes (UPnP
// WANIPv6FirewallControl:1 §2.5.5: 1-65535, unique among live pinholes)
// and indexes the pinholes by them. IDs never used come first, in order;
// then released IDs, oldest release first, so that a UniqueID a client
// still holds names another pinhole as late as possible. Each ID is
// passed over at most once from next and each release is queued once: a
// take costs O(1) amortised, never a walk of the 65535 IDs.
type pinholeIDs struct {
	byID map[uint16]leaseID
	next uint32 // the lowest ID not yet handed out from the start; 1-65536
	// free holds released IDs from head on, oldest first; an ID taken
	// again meanwhile (by Restore) is passed over.
	free []uint16
	head int
}

// take returns a free ID for lease, or false when all 65535 are held.
func (p *pinholeIDs) take(lease leaseID) (uint16, bool) {
	if p.byID == nil {
		p.byID = make(map[uint16]leaseID)
		p.next = 1
	}
	for p.next <= 0xFFFF {
		id := uint16(p.next)
		p.next++
		if _, held := p.byID[id]; !held {
			p.byID[id] = lease
			return id, true
		}
	}
	for p.head < len(p.free) {
		id := p.free[p.head]
		p.head++
		if _, held := p.byID[id]; !held {
			p.byID[id] = lease
			p.compact()
			return id, true
		}
	}
	return 0, false
}

// hold records id as held by lease, for a pinhole restored with its ID; it
// reports false when id is 0 or held.
func (p *pinholeIDs) hold(id uint16, lease leaseID) bool {
	if p.byID == nil {
		p.byID = make(map[uint16]leaseID)
		p.next = 1
	}
	if _, held := p.byID[id]; held || id == 0 {
		return false
	}
	p.byID[id] = lease
	return true
}

// release frees id.
func (p *pinholeIDs) release(id uint16) {
	delete(p.byID, id)
	if uint32(id) < p.next {
		p.free = append(p.free, id)
	}
}

// lookup returns the lease holding id.
func (p *pinholeIDs) lookup(id uint16) (leaseID, bool) {
	l, ok := p.byID[id]
	return l, ok
}

// compact drops the consumed front of free once it is most of it.
func (p *pinholeIDs) compact() {
	if p.head > 1024 && p.head*2 > len(p.free) {
		n := copy(p.free, p.free[p.head:])
		p.free, p.head = p.free[:n], 0
	}
}
