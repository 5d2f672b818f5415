package gateway

// Watch registers fn, to be called after every change of the set of leases
// (a grant, a deletion, an expiry, a reconfiguration), outside the table's
// lock; fn must not block. The returned function unregisters it.
func (t *Table) Watch(fn func()) (stop func()) {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	if t.watchers == nil {
		t.watchers = make(map[int]func())
	}
	id := t.watchSeq
	t.watchSeq++
	t.watchers[id] = fn
	return func() {
		t.watchMu.Lock()
		delete(t.watchers, id)
		t.watchMu.Unlock()
	}
}

func (t *Table) changed() {
	t.watchMu.Lock()
	if len(t.watchers) == 0 {
		t.watchMu.Unlock()
		return
	}
	fns := make([]func(), 0, len(t.watchers))
	for _, fn := range t.watchers {
		fns = append(fns, fn)
	}
	t.watchMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
