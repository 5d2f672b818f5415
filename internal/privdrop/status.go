package privdrop

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// ThreadStatus is what /proc/PID/task/TID/status (proc(5)) says of one
// thread's credentials.
type ThreadStatus struct {
	TID int
	// UID and GID are the real, effective, saved and filesystem ids.
	UID, GID [4]int
	Groups   []int
	// The capability sets, a bit per capability.
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64
	NoNewPrivs                             bool
}

// Mask returns the capability set of o's capabilities.
func (o Options) Mask() uint64 {
	return MaskOf(o.Kept()...)
}

// ReadThreads reads the status of every thread of process pid, the main
// one first. A thread that ends while it is read is left out; any other
// error is returned.
func ReadThreads(pid int) ([]ThreadStatus, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("privdrop: threads of %d: %w", pid, err)
	}
	var out []ThreadStatus
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("privdrop: thread %d of %d: %w", tid, pid, err)
		}
		st, err := parseStatus(b)
		if err != nil {
			return nil, fmt.Errorf("privdrop: thread %d of %d: %w", tid, pid, err)
		}
		st.TID = tid
		if tid == pid {
			out = append([]ThreadStatus{st}, out...)
		} else {
			out = append(out, st)
		}
	}
	if len(out) == 0 || out[0].TID != pid {
		return nil, fmt.Errorf("privdrop: process %d has no status", pid)
	}
	return out, nil
}

// parseStatus reads the credential lines of a status file; each must be
// there.
func parseStatus(b []byte) (ThreadStatus, error) {
	var st ThreadStatus
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		var err error
		switch key {
		case "Uid":
			err = parseIDs(fields, &st.UID)
		case "Gid":
			err = parseIDs(fields, &st.GID)
		case "Groups":
			for _, f := range fields {
				g, gerr := strconv.Atoi(f)
				if gerr != nil {
					err = gerr
				}
				st.Groups = append(st.Groups, g)
			}
		case "CapInh":
			st.CapInh, err = parseMask(fields)
		case "CapPrm":
			st.CapPrm, err = parseMask(fields)
		case "CapEff":
			st.CapEff, err = parseMask(fields)
		case "CapBnd":
			st.CapBnd, err = parseMask(fields)
		case "CapAmb":
			st.CapAmb, err = parseMask(fields)
		case "NoNewPrivs":
			st.NoNewPrivs = len(fields) == 1 && fields[0] == "1"
		default:
			continue
		}
		if err != nil {
			return st, fmt.Errorf("status line %s: %w", key, err)
		}
		seen[key] = true
	}
	for _, k := range []string{"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"} {
		if !seen[k] {
			return st, fmt.Errorf("status has no %s line", k)
		}
	}
	return st, nil
}

func parseIDs(fields []string, ids *[4]int) error {
	if len(fields) != 4 {
		return fmt.Errorf("%d ids, want 4", len(fields))
	}
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil {
			return err
		}
		ids[i] = n
	}
	return nil
}

func parseMask(fields []string) (uint64, error) {
	if len(fields) != 1 {
		return 0, fmt.Errorf("%d fields, want 1", len(fields))
	}
	return strconv.ParseUint(fields[0], 16, 64)
}

// CheckThreads returns an error naming each thread of threads whose
// credentials are not those of a process dropped with o: every uid and
// gid non-zero, not in group 0, CapEff and CapPrm o's capabilities alone,
// CapInh and CapAmb o.Inherited() alone (empty for NoPrograms), CapBnd
// equal to bounding, and NoNewPrivs set.
func CheckThreads(threads []ThreadStatus, o Options, bounding uint64) error {
	want := o.Mask()
	var errs []error
	for _, t := range threads {
		var bad []string
		for _, id := range t.UID {
			if id == 0 {
				bad = append(bad, fmt.Sprintf("Uid %v", t.UID))
				break
			}
		}
		for _, id := range t.GID {
			if id == 0 {
				bad = append(bad, fmt.Sprintf("Gid %v", t.GID))
				break
			}
		}
		if slices.Contains(t.Groups, 0) {
			bad = append(bad, fmt.Sprintf("Groups %v", t.Groups))
		}
		check := func(name string, got, want uint64) {
			if got != want {
				bad = append(bad, fmt.Sprintf("%s %016x, want %016x", name, got, want))
			}
		}
		check("CapEff", t.CapEff, want)
		check("CapPrm", t.CapPrm, want)
		check("CapInh", t.CapInh, MaskOf(o.Inherited()...))
		check("CapAmb", t.CapAmb, MaskOf(o.Inherited()...))
		check("CapBnd", t.CapBnd, bounding)
		if !t.NoNewPrivs {
			bad = append(bad, "NoNewPrivs 0")
		}
		if len(bad) > 0 {
			errs = append(errs, fmt.Errorf("thread %d: %s", t.TID, strings.Join(bad, ", ")))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("privdrop: not dropped: %w", errors.Join(errs...))
	}
	return nil
}

// MaskOf returns the capability set of vs.
func MaskOf(vs ...cap.Value) uint64 {
	var m uint64
	for _, v := range vs {
		m |= 1 << uint(v)
	}
	return m
}
