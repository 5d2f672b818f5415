package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

const (
	crashRounds     = 20
	crashSlots      = 6 // internal ports each LAN host maps and deletes
	crashLifetime   = 3600
	crashMinRunTime = 100 * time.Millisecond
	crashMaxRunTime = 700 * time.Millisecond
)

// slotKey is one mapping a crash worker makes and deletes: a LAN host's
// internal port and protocol.
type slotKey struct {
	internal string // address:port
	proto    string // "tcp" or "udp"
}

// slotState is what the gateway holds for a slot: a mapping to eport, or
// none (eport 0).
type slotState struct{ eport int }

// slotHistory is what a client knows of a slot: the state its last
// acknowledged request left, and the states that requests sent since then
// and never acknowledged (cut off by the crash, or answered garbled) may
// have left.
type slotHistory struct {
	acked     slotState
	uncertain []slotState // a mapping of uncertain eport is {-1}
}

// allows reports whether the gateway may hold s for the slot.
func (h slotHistory) allows(s slotState) bool {
	if s == h.acked {
		return true
	}
	for _, u := range h.uncertain {
		if u == s || (u.eport == -1 && s.eport != 0) {
			return true
		}
	}
	return false
}

func (h slotHistory) String() string {
	var u []string
	for _, s := range h.uncertain {
		u = append(u, strconv.Itoa(s.eport))
	}
	return fmt.Sprintf("acknowledged eport %d (0: none), uncertain [%s]", h.acked.eport, strings.Join(u, " "))
}

// crashWorker is one LAN host mapping and deleting its slots with natpmpc.
type crashWorker struct {
	lab   *netlab.Lab
	host  *netlab.Host
	ports []int
	rng   *rand.Rand

	mu      sync.Mutex
	history map[slotKey]*slotHistory
	acked   int // requests acknowledged, over all rounds
	sent    int // requests sent
}

var natpmpcMappedRE = regexp.MustCompile(`Mapped public port (\d+) protocol (TCP|UDP) to local port (\d+) liftime (\d+)`)

// run sends natpmpc requests one after the other until ctx ends: each maps
// (lifetime 3600) or deletes (lifetime 0) a random slot. A request counts
// as acknowledged only when natpmpc exits 0 having printed the mapping
// response for that slot with that lifetime; any other outcome leaves it
// uncertain.
func (w *crashWorker) run(ctx context.Context) {
	for ctx.Err() == nil {
		port := w.ports[w.rng.IntN(len(w.ports))]
		proto := []string{"tcp", "udp"}[w.rng.IntN(2)]
		lifetime := crashLifetime
		if w.rng.IntN(3) == 0 {
			lifetime = 0
		}
		key := slotKey{fmt.Sprintf("%s:%d", w.host.Addr4, port), proto}
		w.mu.Lock()
		w.sent++
		h := w.history[key]
		if lifetime == 0 {
			h.uncertain = append(h.uncertain, slotState{0})
		} else {
			h.uncertain = append(h.uncertain, slotState{-1})
		}
		w.mu.Unlock()

		p := strconv.Itoa(port)
		out, err := w.host.Run(ctx, labpeers.NATPMPCPath, "-g", w.lab.GatewayLANAddr4.String(), "-a", p, p, proto, strconv.Itoa(lifetime))
		m := natpmpcMappedRE.FindStringSubmatch(out)
		if err != nil || m == nil || !strings.EqualFold(m[2], proto) || m[3] != p || m[4] != strconv.Itoa(lifetime) {
			continue
		}
		eport, _ := strconv.Atoi(m[1])
		if lifetime == 0 {
			eport = 0
		}
		w.mu.Lock()
		w.acked++
		h.acked, h.uncertain = slotState{eport}, nil
		w.mu.Unlock()
	}
}

// TestCrashLoop: 20 rounds, each starting portleased on the state file the
// last one left, while two LAN hosts map and delete with natpmpc at once,
// and sending SIGKILL at a random moment. After each start the kernel's
// inbound elements equal the table, every mapping acknowledged to a client
// is there, none acknowledged as deleted is, and the table holds nothing a
// client did not ask for.
func TestCrashLoop(t *testing.T) {
	t.Parallel()
	lab := netlab.New(t, netlab.Config{LANHosts: 2})
	d := labpeers.StartPortleased(t, lab, labpeers.PortleasedConfig{StateFile: filepath.Join(labpeers.StateDir(t), "leases")})
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 9))
	workers := make([]*crashWorker, 2)
	for i := range workers {
		w := &crashWorker{lab: lab, host: lab.LAN[i], rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), history: make(map[slotKey]*slotHistory)}
		for j := range crashSlots {
			port := 40000 + 100*i + j
			w.ports = append(w.ports, port)
			for _, proto := range []string{"tcp", "udp"} {
				w.history[slotKey{fmt.Sprintf("%s:%d", w.host.Addr4, port), proto}] = &slotHistory{}
			}
		}
		workers[i] = w
	}

	for round := 1; round <= crashRounds; round++ {
		if round > 1 {
			if err := d.Start(t.Context()); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			checkAfterCrash(t, round, lab, d, workers)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(func() { w.run(ctx) })
		}
		time.Sleep(crashMinRunTime + rand.N(crashMaxRunTime-crashMinRunTime))
		if err := d.Kill(); err != nil {
			cancel()
			wg.Wait()
			t.Fatalf("round %d: %v", round, err)
		}
		cancel()
		wg.Wait()
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAfterCrash(t, crashRounds+1, lab, d, workers)
	var sent, acked int
	for _, w := range workers {
		sent, acked = sent+w.sent, acked+w.acked
	}
	t.Logf("%d rounds: %d requests sent, %d acknowledged", crashRounds, sent, acked)
	if acked < crashRounds {
		t.Fatalf("only %d requests acknowledged in %d rounds: the loop tested little", acked, crashRounds)
	}
}

// checkAfterCrash reads the table and the kernel after a start and checks
// them against what the workers were told; then it takes the table as the
// slots' acknowledged state, the uncertain requests having been decided.
func checkAfterCrash(t *testing.T, round int, lab *netlab.Lab, d *labpeers.Portleased, workers []*crashWorker) {
	t.Helper()
	table := readTable(t, lab.LAN[0], d)
	kernelMatchesTable(t, kernelInbound(t, lab), table)

	held := make(map[slotKey]slotState)
	var problems []string
	for k, m := range table.entries {
		sk := slotKey{m.Internal, k.proto}
		if prev, dup := held[sk]; dup {
			problems = append(problems, fmt.Sprintf("%s/%s mapped twice: eports %d and %d", sk.internal, sk.proto, prev.eport, k.eport))
		}
		held[sk] = slotState{k.eport}
	}
	for _, w := range workers {
		for sk, h := range w.history {
			s := held[sk]
			delete(held, sk)
			if !h.allows(s) {
				problems = append(problems, fmt.Sprintf("%s/%s: the table holds eport %d (0: none); the client knows %v", sk.internal, sk.proto, s.eport, h))
			}
			h.acked, h.uncertain = s, nil
		}
	}
	for sk, s := range held {
		problems = append(problems, fmt.Sprintf("%s/%s: eport %d in the table, asked for by no client", sk.internal, sk.proto, s.eport))
	}
	if len(problems) > 0 {
		t.Fatalf("after crash %d:\n%s\ntable:\n%s", round-1, strings.Join(problems, "\n"), table.description)
	}
}
