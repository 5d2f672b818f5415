package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// mappingKey names a mapping the way the gateway does: its protocol ("tcp"
// or "udp") and external port.
type mappingKey struct {
	proto string
	eport int
}

func (k mappingKey) String() string { return fmt.Sprintf("%s/%d", k.proto, k.eport) }

// listedMapping is one entry of the gateway's table as `portlease list
// --json` prints it (UPnP GetGenericPortMappingEntry, which walks every
// lease, NAT-PMP ones included).
type listedMapping struct {
	Protocol     string `json:"protocol"`
	ExternalPort int    `json:"external_port"`
	Internal     string `json:"internal"`
	Description  string `json:"description"`
	Lifetime     int    `json:"lifetime"` // seconds remaining; 0 permanent
}

// tableReading is the gateway's table read over UPnP, with the times the
// walk began and ended: each entry's remaining lifetime was read between
// the two.
type tableReading struct {
	entries     map[mappingKey]listedMapping
	begin, end  time.Time
	description string // what was read, for messages
}

// readTable walks the gateway's table with `portlease list --json` from
// host, straight to d's description URL. The test fails when the client
// fails or lists one mapping twice.
func readTable(t *testing.T, host *netlab.Host, d *labpeers.Portleased) tableReading {
	t.Helper()
	begin := time.Now()
	out, code := portlease(t, host, "list", "--json", "--protocol", "upnp", "--url", d.DescriptionURL())
	end := time.Now()
	if code != 0 {
		t.Fatalf("portlease list: exit %d:\n%s", code, out)
	}
	var list []listedMapping
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("portlease list --json: %v:\n%s", err, out)
	}
	r := tableReading{entries: make(map[mappingKey]listedMapping, len(list)), begin: begin, end: end, description: out}
	for _, m := range list {
		k := mappingKey{strings.ToLower(m.Protocol), m.ExternalPort}
		if _, dup := r.entries[k]; dup {
			t.Fatalf("portlease list lists %v twice:\n%s", k, out)
		}
		r.entries[k] = m
	}
	return r
}

// kernelElement is one element of portleased's inbound4 map: where the
// external port forwards to, and the seconds until the kernel drops it.
type kernelElement struct {
	internal string // address:port
	expires  int
}

// kernelInbound reads portleased's inbound4 map with `nft -j`; the test
// fails when nft does (when the map is missing, too) or prints what this
// cannot read.
func kernelInbound(t *testing.T, lab *netlab.Lab) map[mappingKey]kernelElement {
	t.Helper()
	out := labpeers.NFT(t, lab.Gateway, "-j", "list", "map", "inet", "portleased", "inbound4")
	elems, err := parseInbound(out)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	return elems
}

// parseInbound reads the output of `nft -j list map inet portleased
// inbound4`: each element is [{"elem": {"val": {"concat": [proto, eport]},
// "expires": s}}, {"concat": [addr, port]}].
func parseInbound(out string) (map[mappingKey]kernelElement, error) {
	raws, err := labpeers.MapElements([]byte(out))
	if err != nil {
		return nil, err
	}
	elems := make(map[mappingKey]kernelElement)
	for _, raw := range raws {
		var pair []json.RawMessage
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("nft -j: element %s: not a key and a value", raw)
		}
		var key struct {
			Elem struct {
				Val struct {
					Concat []any `json:"concat"`
				} `json:"val"`
				Expires int `json:"expires"`
			} `json:"elem"`
		}
		var val struct {
			Concat []any `json:"concat"`
		}
		if err := json.Unmarshal(pair[0], &key); err != nil {
			return nil, fmt.Errorf("nft -j: element key %s: %w", pair[0], err)
		}
		if err := json.Unmarshal(pair[1], &val); err != nil {
			return nil, fmt.Errorf("nft -j: element value %s: %w", pair[1], err)
		}
		kc, vc := key.Elem.Val.Concat, val.Concat
		if len(kc) != 2 || len(vc) != 2 {
			return nil, fmt.Errorf("nft -j: element %s: want proto . port : addr . port", raw)
		}
		proto, pok := kc[0].(string)
		eport, eok := kc[1].(float64)
		addr, aok := vc[0].(string)
		iport, iok := vc[1].(float64)
		if !pok || !eok || !aok || !iok {
			return nil, fmt.Errorf("nft -j: element %s: unexpected types", raw)
		}
		elems[mappingKey{proto, int(eport)}] = kernelElement{internal: fmt.Sprintf("%s:%d", addr, int(iport)), expires: key.Elem.Expires}
	}
	return elems, nil
}

// kernelMatchesTable fails the test unless the kernel's inbound4 elements
// are exactly the table's mappings, each to the same internal endpoint.
func kernelMatchesTable(t *testing.T, kernel map[mappingKey]kernelElement, table tableReading) {
	t.Helper()
	var diffs []string
	for k, m := range table.entries {
		e, ok := kernel[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%v -> %s in the table, not in the kernel", k, m.Internal))
		case e.internal != m.Internal:
			diffs = append(diffs, fmt.Sprintf("%v -> %s in the table, -> %s in the kernel", k, m.Internal, e.internal))
		}
	}
	for k, e := range kernel {
		if _, ok := table.entries[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%v -> %s in the kernel, not in the table", k, e.internal))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Fatalf("the kernel's inbound4 elements differ from the table (%d in the table, %d in the kernel):\n%s",
			len(table.entries), len(kernel), strings.Join(diffs, "\n"))
	}
}

var epochRE = regexp.MustCompile(`(?m)^epoch = (\d+)$`)

// natpmpEpoch asks the gateway for its external address with natpmpc and
// returns the epoch it answered (RFC 6886 §3.2) and when it was asked.
func natpmpEpoch(t *testing.T, lab *netlab.Lab, host *netlab.Host) (uint32, time.Time) {
	t.Helper()
	at := time.Now()
	out := natpmpc(t, lab, host)
	m := epochRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("natpmpc printed no epoch:\n%s", out)
	}
	e, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(e), at
}

// epochContinued reports whether a client that saw epoch before at time
// beforeAt and epoch after at afterAt concludes, by RFC 6886 §3.6, that the
// gateway did not lose its state: after+2 is at least before plus 7/8 of
// the time between. It also refuses an epoch that ran ahead of the clock
// by more than that slack.
func epochContinued(before uint32, beforeAt time.Time, after uint32, afterAt time.Time) bool {
	elapsed := afterAt.Sub(beforeAt).Seconds()
	lost := float64(after)+2 < float64(before)+elapsed*7/8
	ahead := float64(after) > float64(before)+elapsed+2
	return !lost && !ahead
}

// keepOneShot maps every line of a CSV file once with `portlease keep
// --oneshot` from host over protocol ("natpmp" or "upnp", the latter
// straight to d's description URL); the test fails if any line fails.
func keepOneShot(t *testing.T, host *netlab.Host, d *labpeers.Portleased, protocol, csv string) {
	t.Helper()
	file := writeFile(t, protocol+".csv", csv)
	args := []string{"keep", "--foreground", "--oneshot", "-f", file, "--protocol", protocol,
		"--pid-file", filepath.Join(t.TempDir(), "keep.pid"), "--log-level", "warn"}
	if protocol == "upnp" {
		args = append(args, "--url", d.DescriptionURL())
	}
	if out, code := portlease(t, host, args...); code != 0 {
		t.Fatalf("keep --oneshot --protocol %s: exit %d:\n%s", protocol, code, out)
	}
}

// waitFor polls cond every 20 ms until it holds or the deadline passes, and
// reports whether it held. It is for the deadlines the issue states.
func waitFor(deadline time.Time, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runQuiet runs a program on host and returns its output and error, for
// polls where a failure only means "not yet".
func runQuiet(host *netlab.Host, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return host.Run(ctx, name, args...)
}

// sortedKeys returns m's keys in a stable order, for messages.
func sortedKeys[V any](m map[mappingKey]V) []mappingKey {
	return slices.SortedFunc(maps.Keys(m), func(a, b mappingKey) int {
		if c := strings.Compare(a.proto, b.proto); c != 0 {
			return c
		}
		return a.eport - b.eport
	})
}

// logLine returns the last line of d's log that contains s, "" if none.
func logLine(d *labpeers.Portleased, s string) string {
	var found string
	for line := range strings.Lines(d.Log()) {
		if strings.Contains(line, s) {
			found = strings.TrimSpace(line)
		}
	}
	return found
}
