package statefile

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"slices"
	"time"
)

// The file is compacted in the background while Commit goes on appending
// to it. Under the lock, the start takes a copy of the index (maps.Clone)
// and notes the file's end; then, without the lock, the live records up to
// that end are copied from the file (read back by offset, in file order)
// into a temporary, which is synced. The records Commit appended meanwhile
// (the tail) are copied after them, most of them without the lock and the
// last ones under it; then the temporary is synced, renamed over the file,
// the directory synced, and the index switched to the new offsets. A record
// of the tail replays over the snapshot just as it did over the old file.

// compaction is one compaction under way.
type compaction struct {
	old   logFile
	index map[key]loc // the index at the start
	meta  loc
	end   int64 // the file's length at the start
}

// errCompactionAbandoned ends a compaction that Close overtook.
var errCompactionAbandoned = errors.New("statefile: compaction abandoned: file closed")

// maybeCompact starts a compaction in the background when the file has
// grown past twice its live records and the slack. f.mu is held.
func (f *File) maybeCompact() {
	if c, ok := f.startCompaction(false); ok {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.runCompaction(c)
		}()
	}
}

// startCompaction begins a compaction when one is due, or whatever the
// file's size when force is set. f.mu is held.
func (f *File) startCompaction(force bool) (*compaction, bool) {
	if f.compacting || f.closed || f.broken != nil {
		return nil, false
	}
	if !force && (f.size < f.compactMin || f.size <= 2*f.liveBytes+f.slack) {
		return nil, false
	}
	f.compacting = true
	f.dirty = make(map[key]struct{})
	return &compaction{old: f.f, index: maps.Clone(f.live), meta: f.meta, end: f.size}, true
}

// runCompaction carries c out, logging the outcome; a failed compaction
// leaves the file as it was and is tried again once the file has grown by
// the slack.
func (f *File) runCompaction(c *compaction) {
	start := time.Now()
	before := c.end
	tmp := tempName(f.path)
	locked, err := f.compact(c, tmp)
	if err != nil {
		os.Remove(tmp)
		f.mu.Lock()
		f.compacting, f.dirty = false, nil
		f.compactMin = f.size + f.slack
		f.mu.Unlock()
		if !errors.Is(err, errCompactionAbandoned) {
			f.log.Warn("state file not compacted", "path", f.path, "error", err)
		}
		return
	}
	f.log.Debug("state file compacted", "path", f.path, "before", before, "after", f.sizeNow(),
		"took", time.Since(start), "locked", locked)
}

// sizeNow returns the file's length under the lock.
func (f *File) sizeNow() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

// compact writes the snapshot and the tail of c into tmp and installs it.
// It returns how long it held f.mu at the end.
func (f *File) compact(c *compaction, tmp string) (time.Duration, error) {
	w, err := f.newFile(tmp)
	if err != nil {
		return 0, err
	}
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()
	index, meta, snapLen, err := writeSnapshot(w, c, f.path, tmp)
	if err != nil {
		return 0, err
	}
	// Copy the tail without the lock, then what came after under it.
	copied := c.end
	if cur := f.sizeNow(); cur > copied {
		if err := copyRange(w, c.old, copied, cur, f.path); err != nil {
			return 0, err
		}
		copied = cur
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lockedAt := time.Now()
	if f.closed {
		return 0, errCompactionAbandoned
	}
	if err := copyRange(w, c.old, copied, f.size, f.path); err != nil {
		return 0, err
	}
	if err := w.Sync(); err != nil {
		return 0, fmt.Errorf("statefile: sync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return 0, fmt.Errorf("statefile: rename %s: %w", tmp, err)
	}
	ok = true
	if err := syncDir(f.path); err != nil {
		f.dirPending = true
		f.log.Warn("state file compacted, directory not synced: the next commit syncs it", "path", f.path, "error", err)
	}
	// Switch the index: what changed since the start lies in the tail.
	shift := snapLen - c.end
	for k := range f.dirty {
		if l, live := f.live[k]; live {
			index[k] = makeLoc(l.offset()+shift, l.size())
		} else {
			delete(index, k)
		}
	}
	if f.meta != c.meta {
		meta = makeLoc(f.meta.offset()+shift, f.meta.size())
	}
	c.old.Close()
	f.f, f.live, f.meta = w, index, meta
	f.size += shift
	f.compacting, f.dirty = false, nil
	f.compactMin = 0
	return time.Since(lockedAt), nil
}

// writeSnapshot writes the header, the meta record and the live put records
// of c into w, read back from c.old in file order, and syncs w. It returns
// the index and meta location in w and the length written. path names
// the old file and tmp w in errors.
func writeSnapshot(w logFile, c *compaction, path, tmp string) (map[key]loc, loc, int64, error) {
	type entry struct {
		k key
		l loc
	}
	entries := make([]entry, 0, len(c.index))
	for k, l := range c.index {
		entries = append(entries, entry{k, l})
	}
	c.index = nil
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.l, b.l) })

	out := bufio.NewWriterSize(w, 256<<10)
	out.Write(appendHeader(nil))
	n := int64(headerLen)
	var rec [maxRecord]byte
	var meta loc
	if c.meta != 0 {
		b := rec[:c.meta.size()]
		if err := readRecord(c.old, b, c.meta.offset(), path); err != nil {
			return nil, 0, 0, err
		}
		out.Write(b)
		meta = makeLoc(n, len(b))
		n += int64(len(b))
	}
	in := bufio.NewReaderSize(io.NewSectionReader(c.old, 0, c.end), 256<<10)
	pos := int64(0)
	index := make(map[key]loc, len(entries))
	for _, e := range entries {
		if _, err := in.Discard(int(e.l.offset() - pos)); err != nil {
			return nil, 0, 0, fmt.Errorf("statefile: compact: read back %s: %w", path, err)
		}
		b := rec[:e.l.size()]
		if _, err := io.ReadFull(in, b); err != nil {
			return nil, 0, 0, fmt.Errorf("statefile: compact: read back %s: %w", path, err)
		}
		if !intact(b) {
			return nil, 0, 0, fmt.Errorf("statefile: compact: record at offset %d of %s does not read back intact", e.l.offset(), path)
		}
		pos = e.l.offset() + int64(len(b))
		out.Write(b)
		index[e.k] = makeLoc(n, len(b))
		n += int64(len(b))
	}
	if err := out.Flush(); err != nil {
		return nil, 0, 0, fmt.Errorf("statefile: compact: write %s: %w", tmp, err)
	}
	if err := w.Sync(); err != nil {
		return nil, 0, 0, fmt.Errorf("statefile: compact: sync %s: %w", tmp, err)
	}
	return index, meta, n, nil
}

// readRecord reads the record of len(b) bytes at off and checks it.
func readRecord(r io.ReaderAt, b []byte, off int64, name string) error {
	if _, err := r.ReadAt(b, off); err != nil {
		return fmt.Errorf("statefile: compact: read back %s: %w", name, err)
	}
	if !intact(b) {
		return fmt.Errorf("statefile: compact: record at offset %d of %s does not read back intact", off, name)
	}
	return nil
}

// intact reports whether rec is one whole record with a good checksum.
func intact(rec []byte) bool {
	return len(rec) >= recHeaderLen &&
		int(binary.BigEndian.Uint32(rec[offRecLen:])) == len(rec)-recHeaderLen &&
		crc32.Checksum(rec[crcCoverStart:], castagnoli) == binary.BigEndian.Uint32(rec[offRecCRC:])
}

// copyRange appends the bytes [from, to) of old to w.
func copyRange(w io.Writer, old io.ReaderAt, from, to int64, name string) error {
	if to <= from {
		return nil
	}
	if _, err := io.Copy(w, io.NewSectionReader(old, from, to-from)); err != nil {
		return fmt.Errorf("statefile: compact: copy the tail of %s: %w", name, err)
	}
	return nil
}
