package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/portlease/portlease/gateway"
)

// Meta is what the state keeps besides the leases.
type Meta struct {
	EpochStart time.Time // wall-clock start of the NAT-PMP/PCP epoch (RFC 6886 §3.6, RFC 6887 §8.5)
	BootID     uint32    // UPnP BOOTID.UPNP.ORG of the running (latest) start
}

// Damage is one stretch of the file that could not be read.
type Damage struct {
	Offset int64
	Length int64
	Reason string
}

// Loaded is what Open found.
type Loaded struct {
	Leases  []gateway.Lease // the leases not yet expired at now (Expires zero = permanent: kept)
	Meta    Meta            // zero when no usable meta record was found
	Existed bool            // a state file was there (even if damaged)
	Damage  []Damage        // each also logged at Warn with "offset"
}

// ErrClosed is returned by Commit and SetMeta after Close.
var ErrClosed = errors.New("statefile: closed")

// compactSlack is what the file may exceed twice its live records by before
// it is compacted.
const compactSlack = 1 << 20

// dirMode and fileMode are the modes the state's directory and file are
// created with: the leases tell who on the LAN runs what.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// logFile is what File needs of the state file; *os.File in use, a
// counting wrapper in tests.
type logFile interface {
	Write(b []byte) (int, error)
	ReadAt(b []byte, off int64) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// File is an open state file: a log of lease records appended by Commit and
// compacted when it grows past twice its live records.
type File struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	f      logFile // opened O_APPEND
	size   int64   // the length known durable: the end of the last good write
	buf    []byte  // the batch being encoded, reused
	closed bool
	// broken is set when a failed write could not be undone: the file's
	// content past size is unknown, so nothing more is claimed durable.
	broken error
	// dirPending is set while the rename of a compaction is not known
	// durable: the next write syncs the directory before it returns.
	dirPending bool

	// live locates each live lease's latest put record; meta the latest
	// meta record (0 when none). liveBytes is what a snapshot would take.
	live      map[key]loc
	meta      loc
	liveBytes int64
	// lastMeta is the meta record last written, for Replace; hasMeta
	// tells whether there is one.
	lastMeta Meta
	hasMeta  bool

	// Compaction (compact.go).
	slack      int64 // compactSlack; tests lower it
	compacting bool
	compactMin int64 // do not try again before the file reaches this size
	dirty      map[key]struct{}
	wg         sync.WaitGroup
	// newFile opens the compacted file's temporary; tests wrap it.
	newFile func(name string) (logFile, error)
}

// loc is where a record lies in the file: its offset in the upper 48 bits
// and its size in the lower 16 (a record is at most maxRecord bytes).
type loc uint64

func makeLoc(off int64, size int) loc { return loc(off)<<16 | loc(size) }
func (l loc) offset() int64           { return int64(l >> 16) }
func (l loc) size() int               { return int(l & 0xffff) }

// Open reads the state at path (creating its directory, mode 0700, when missing), keeps what is good,
// rewrites the file compacted and returns it ready for Commit. A missing, empty, truncated or corrupt file
// never fails Open: it loses at most the damaged records and says so in the log with the byte offset.
// Open fails only when the file or its directory cannot be created/written (error names the path).
//
// A file that is not a state file of this version (bad magic, unknown
// version) is kept aside as path+".unreadable" before a new one is started.
func Open(path string, now time.Time, log *slog.Logger) (*File, Loaded, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, Loaded{}, fmt.Errorf("statefile: create directory of %s: %w", path, err)
	}
	var ld Loaded
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, Loaded{}, fmt.Errorf("statefile: read %s: %w", path, err)
	default:
		ld.Existed = true
	}
	img := replay(b)
	b = nil
	ld.Damage = img.damage
	for _, d := range img.damage {
		log.Warn("state file damaged: records lost", "path", path, "offset", d.Offset, "length", d.Length, "reason", d.Reason)
	}
	if img.hasMeta {
		ld.Meta = img.meta
	}
	var expired int
	ld.Leases, expired = img.live(now)
	img.leases = nil
	if img.unreadable {
		aside := path + ".unreadable"
		if err := os.Rename(path, aside); err != nil {
			log.Warn("state file unreadable, not kept aside", "path", path, "error", err)
		} else {
			log.Warn("state file unreadable, kept aside", "path", path, "aside", aside)
		}
	}

	f := &File{path: path, log: log, slack: compactSlack, newFile: createTemp}
	if err := f.rewrite(ld.Leases, ld.Meta, img.hasMeta); err != nil {
		return nil, Loaded{}, err
	}
	log.Info("state file loaded", "path", path, "leases", len(ld.Leases), "expired", expired,
		"damaged", len(ld.Damage), "bytes", f.size)
	return f, ld, nil
}

// rewrite writes a fresh file with leases and meta through a temporary
// and makes it f's file.
func (f *File) rewrite(leases []gateway.Lease, m Meta, hasMeta bool) error {
	live := make(map[key]loc, len(leases))
	var metaLoc loc
	b := appendHeader(make([]byte, 0, headerLen+len(leases)*(recHeaderLen+putFixedLen+16)))
	if hasMeta {
		start := len(b)
		b = appendMeta(b, m)
		metaLoc = makeLoc(int64(start), len(b)-start)
	}
	for i := range leases {
		start := len(b)
		b = appendPut(b, &leases[i])
		live[leaseKey(&leases[i])] = makeLoc(int64(start), len(b)-start)
	}
	tmp := tempName(f.path)
	w, err := f.newFile(tmp)
	if err != nil {
		return err
	}
	if err := writeSync(w, b, tmp); err != nil {
		w.Close()
		os.Remove(tmp)
		return err
	}
	if err := install(tmp, f.path); err != nil {
		w.Close()
		os.Remove(tmp)
		return err
	}
	f.f, f.size, f.liveBytes = w, int64(len(b)), int64(len(b))
	f.live, f.meta, f.lastMeta, f.hasMeta = live, metaLoc, m, hasMeta
	return nil
}

// Replace rewrites the file to hold exactly leases and the meta last
// recorded, as Open does (through a temporary, synced and renamed over the
// file), for a caller whose Commit failed to bring the file back to agree
// with its table. A File that a failed write left broken is usable again
// once Replace succeeds. A compaction under way is waited for.
func (f *File) Replace(leases []gateway.Lease) error {
	f.mu.Lock()
	for f.compacting {
		f.mu.Unlock()
		f.wg.Wait()
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	old := f.f
	if err := f.rewrite(leases, f.lastMeta, f.hasMeta); err != nil {
		return err
	}
	f.broken, f.dirPending, f.compactMin = nil, false, 0
	if err := old.Close(); err != nil {
		f.log.Warn("state file: closing the replaced file", "path", f.path, "error", err)
	}
	return nil
}

// Commit records leases granted or changed (put: the whole lease) and leases removed (remove: identified by
// Protocol and ExternalPort, which are unique in the table, a pinhole by its PinholeID) in ONE write(2) and at most ONE fsync, whatever
// the number of leases. It returns once the data is durable. Safe for concurrent use (serialise inside).
//
// A lease both put and removed in one call ends removed: removes are
// recorded after puts. A description longer than 1024 bytes is cut there
// (at a character boundary). After a failed Commit nothing of it is in the
// file; should the file not be restored to its last durable length, every
// later Commit fails.
func (f *File) Commit(put, remove []gateway.Lease) error {
	if len(put) == 0 && len(remove) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(); err != nil {
		return err
	}
	b := f.buf[:0]
	for i := range put {
		b = appendPut(b, &put[i])
	}
	for i := range remove {
		b = appendRemove(b, &remove[i])
	}
	f.buf = b
	if err := f.append(b, "commit"); err != nil {
		return err
	}
	// Index what was written.
	off := f.size - int64(len(b))
	for i := range put {
		k := leaseKey(&put[i])
		size := putSize(&put[i])
		f.setLive(k, makeLoc(off, size))
		off += int64(size)
	}
	for i := range remove {
		f.dropLive(leaseKey(&remove[i]))
	}
	f.shrinkBuf()
	f.maybeCompact()
	return nil
}

// SetMeta records m, durable like Commit.
func (f *File) SetMeta(m Meta) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(); err != nil {
		return err
	}
	b := appendMeta(f.buf[:0], m)
	f.buf = b
	if err := f.append(b, "set meta"); err != nil {
		return err
	}
	f.liveBytes += int64(len(b)) - int64(f.meta.size())
	f.meta = makeLoc(f.size-int64(len(b)), len(b))
	f.lastMeta, f.hasMeta = m, true
	f.maybeCompact()
	return nil
}

// Close closes the file, waiting for a compaction under way to end. It is
// safe to call more than once.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("statefile: close %s: %w", f.path, err)
	}
	return nil
}

// usable returns why f takes no more writes, or nil.
func (f *File) usable() error {
	if f.closed {
		return ErrClosed
	}
	return f.broken
}

// append writes b at the end of the file in one write and syncs it. On
// failure it cuts the file back to its last durable length, or marks f
// broken when it cannot.
func (f *File) append(b []byte, op string) error {
	n, err := f.f.Write(b)
	if err == nil && n != len(b) {
		err = fmt.Errorf("short write of %d bytes out of %d", n, len(b))
	}
	if err == nil {
		err = f.f.Sync()
	}
	if err == nil && f.dirPending {
		// A compaction renamed the file but could not sync the
		// directory: until it is, the rename may not survive a crash.
		if err = syncDir(f.path); err == nil {
			f.dirPending = false
		}
	}
	if err == nil {
		f.size += int64(len(b))
		return nil
	}
	err = fmt.Errorf("statefile: %s: write %s: %w", op, f.path, err)
	if terr := f.f.Truncate(f.size); terr != nil {
		f.broken = fmt.Errorf("statefile: %s: cut back to %d bytes after a failed write: %w", f.path, f.size, terr)
		f.log.Error("state file unusable", "path", f.path, "error", f.broken)
	} else if serr := f.f.Sync(); serr != nil {
		f.broken = fmt.Errorf("statefile: %s: sync after cutting back a failed write: %w", f.path, serr)
		f.log.Error("state file unusable", "path", f.path, "error", f.broken)
	}
	return err
}

// setLive records l as the latest put of k.
func (f *File) setLive(k key, l loc) {
	if old, ok := f.live[k]; ok {
		f.liveBytes -= int64(old.size())
	}
	f.live[k] = l
	f.liveBytes += int64(l.size())
	if f.dirty != nil {
		f.dirty[k] = struct{}{}
	}
}

// dropLive forgets k.
func (f *File) dropLive(k key) {
	if old, ok := f.live[k]; ok {
		f.liveBytes -= int64(old.size())
		delete(f.live, k)
	}
	if f.dirty != nil {
		f.dirty[k] = struct{}{}
	}
}

// shrinkBuf lets go of a batch buffer grown by an unusually large batch.
func (f *File) shrinkBuf() {
	if cap(f.buf) > 1<<20 {
		f.buf = nil
	}
}

// tempName is where a new file is written before it replaces path.
func tempName(path string) string { return path + ".tmp" }

// createTemp creates (or empties) the temporary name for appending.
func createTemp(name string) (logFile, error) {
	w, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, fileMode)
	if err != nil {
		return nil, fmt.Errorf("statefile: create %s: %w", name, err)
	}
	return w, nil
}

// writeSync writes b to w and syncs it.
func writeSync(w logFile, b []byte, name string) error {
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("statefile: write %s: %w", name, err)
	}
	if err := w.Sync(); err != nil {
		return fmt.Errorf("statefile: sync %s: %w", name, err)
	}
	return nil
}

// install renames tmp over path and syncs their directory, so that the
// rename survives a crash.
func install(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("statefile: rename %s: %w", tmp, err)
	}
	return syncDir(path)
}

// syncDir syncs the directory of path, making a rename in it durable.
func syncDir(path string) error {
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("statefile: open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("statefile: sync directory %s: %w", dir, err)
	}
	return nil
}
