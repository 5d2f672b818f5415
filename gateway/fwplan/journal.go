package fwplan

import "slices"

// linearMax is the number of keys up to which a journal searches them
// linearly: a batch of one mapping makes no map.
const linearMax = 16

// saved is the value a key had before a batch wrote it.
type saved[V any] struct {
	v    V
	held bool
}

// journal remembers, for each key a batch writes, the value it had before
// the first write, in the order the keys were first written.
type journal[K comparable, V any] struct {
	keys []K
	old  []saved[V]
	pos  map[K]int32 // nil while len(keys) <= linearMax
}

// find returns the position of k, or -1.
func (j *journal[K, V]) find(k K) int {
	if j.pos == nil {
		return slices.Index(j.keys, k)
	}
	if i, ok := j.pos[k]; ok {
		return int(i)
	}
	return -1
}

// grow makes room for n keys: a batch that knows its size makes its map
// at once rather than growing it.
func (j *journal[K, V]) grow(n int) {
	j.keys = make([]K, 0, n)
	j.old = make([]saved[V], 0, n)
	if n > linearMax {
		j.pos = make(map[K]int32, n)
	}
}

// note records what k holds in m, unless it was already, and returns its
// position: k is about to be written.
func (j *journal[K, V]) note(m map[K]V, k K) int {
	if i := j.find(k); i >= 0 {
		return i
	}
	v, held := m[k]
	i := len(j.keys)
	j.keys = append(j.keys, k)
	j.old = append(j.old, saved[V]{v, held})
	switch {
	case j.pos != nil:
		j.pos[k] = int32(i)
	case len(j.keys) > linearMax:
		j.pos = make(map[K]int32, 2*len(j.keys))
		for n, k := range j.keys {
			j.pos[k] = int32(n)
		}
	}
	return i
}

// write sets k to v in m, or deletes it (!held), noted, and returns its
// position.
func (j *journal[K, V]) write(m map[K]V, k K, v V, held bool) int {
	i := j.note(m, k)
	set(m, k, v, held)
	return i
}

// set sets k to v in m, or deletes it (!held).
func set[K comparable, V any](m map[K]V, k K, v V, held bool) {
	if held {
		m[k] = v
	} else {
		delete(m, k)
	}
}

// restore puts every key of j back into m as it was.
func (j *journal[K, V]) restore(m map[K]V) {
	for i, k := range j.keys {
		if j.old[i].held {
			m[k] = j.old[i].v
		} else {
			delete(m, k)
		}
	}
}
