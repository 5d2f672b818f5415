package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portlease/portlease/internal/labpeers"
	"github.com/portlease/portlease/internal/netlab"
)

// series is one gateway's run over the table sizes, in a lab of its own.
type series struct {
	b        *bench
	name     string
	lab      *netlab.Lab
	gw       gateway
	pl       *portleased // nil for miniupnpd
	mu       *miniupnpd  // nil for portleased
	prof     *profiler   // portleased's, with -profile
	run      *gatewayRun
	current  int      // mappings in the table
	measured int      // sizes measured so far: the next one's port block (measuredPorts)
	stopped  bool     // the series ended early: run.StopReason says why
	undo     []func() // run last to first by close
}

// runGateway measures one gateway in a fresh lab, removed at the end.
func (b *bench) runGateway(name string) (*gatewayRun, error) {
	ctx := context.Background()
	s, err := b.newSeries(ctx, name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	sizes := b.sizesOf(name)
	if len(sizes) < len(b.sizes) {
		s.run.MaxSize = b.iptablesMax
		say("%s: measured at sizes up to %s (-iptables-max-size)", name, thousands(b.iptablesMax))
	}
	for _, size := range sizes {
		if err := s.advance(ctx, size); err != nil {
			return nil, err
		}
		if s.stopped {
			break
		}
	}
	s.finish(ctx)
	return s.run, nil
}

// runPair measures portleased and portleased-state, each in a fresh lab,
// size by size: both are filled and measured at a size before either goes
// on to the next, and in between their NAT-PMP rates are compared in
// alternating rounds (see compareRates). So the two are measured under the
// same load of the machine, seconds apart.
func (b *bench) runPair() ([]*gatewayRun, []*stateCostStep, error) {
	ctx := context.Background()
	none, err := b.newSeries(ctx, gwPortleased)
	if err != nil {
		return nil, nil, err
	}
	defer none.close()
	state, err := b.newSeries(ctx, gwPortleasedState)
	if err != nil {
		return nil, nil, err
	}
	defer state.close()
	var cost []*stateCostStep
	for _, size := range b.sizes {
		for _, s := range []*series{none, state} {
			if !s.stopped {
				if err := s.advance(ctx, size); err != nil {
					return nil, nil, err
				}
			}
		}
		if none.stopped || state.stopped {
			break
		}
		if c := b.compareRates(ctx, none, state); c != nil {
			cost = append(cost, c)
		}
	}
	none.finish(ctx)
	state.finish(ctx)
	return []*gatewayRun{none.run, state.run}, cost, nil
}

// newSeries sets up a lab and starts the gateway named name in it.
func (b *bench) newSeries(ctx context.Context, name string) (_ *series, err error) {
	s := &series{b: b, name: name}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.lab, err = netlab.Setup(ctx, netlab.Config{LANHosts: 2}); err != nil {
		return nil, err
	}
	s.undo = append(s.undo, s.lab.HandleInterrupt(), func() { s.lab.Close() })
	dir, err := os.MkdirTemp("", "benchlab-"+name+"-")
	if err != nil {
		return nil, err
	}
	s.undo = append(s.undo, func() { os.RemoveAll(dir) })
	logPath, err := filepath.Abs(filepath.Join(b.out, name+".log"))
	if err != nil {
		return nil, err
	}
	s.run = &gatewayRun{Name: name, Log: logPath}
	if !isPortleased(name) {
		s.run.Version = packageVersion("miniupnpd-nftables")
		if s.mu, err = startMiniUPnPd(ctx, s.lab, dir, logPath); err != nil {
			return nil, err
		}
		s.gw = s.mu
		s.undo = append(s.undo, s.gw.stop)
		return s, nil
	}
	s.run.Version = "portleased, this tree at " + gitRevision()
	if isIptables(name) {
		s.run.Version = fmt.Sprintf("portleased with firewall %s, this tree at %s; %s", firewallOf(name), gitRevision(),
			iptablesVersion(firewallOf(name)))
	}
	socket := ""
	if b.profile {
		socket = filepath.Join(dir, "profile.sock")
		// bench/profiles for portleased, bench/profiles/state,
		// bench/profiles/iptables-nft ... for the others.
		profDir := filepath.Join(b.out, "profiles")
		if name != gwPortleased {
			profDir = filepath.Join(profDir, strings.TrimPrefix(name, "portleased-"))
		}
		if s.prof, err = newProfiler(socket, profDir); err != nil {
			return nil, err
		}
	}
	stateFile := ""
	if name == gwPortleasedState {
		// Where the daemon, once it has dropped to its user, can write.
		stateDir, err := labpeers.NewStateDir(b.stateDir)
		if err != nil {
			return nil, fmt.Errorf("-state-dir: %w", err)
		}
		s.undo = append(s.undo, func() { os.RemoveAll(stateDir) })
		stateFile = filepath.Join(stateDir, "leases")
		s.run.StateFile = describeStateFile(stateFile)
		say("%s: state file %s", name, s.run.StateFile)
	}
	opts := portleasedOptions{firewall: firewallOf(name), profileSocket: socket, stateFile: stateFile}
	if s.pl, err = startPortleased(ctx, s.lab, b.portleasedPath, dir, logPath, opts); err != nil {
		return nil, err
	}
	s.gw = s.pl
	s.undo = append(s.undo, s.gw.stop)
	return s, nil
}

// close stops the gateway and removes the lab and the files.
func (s *series) close() {
	for _, f := range slices.Backward(s.undo) {
		f()
	}
	s.undo = nil
}

// advance fills the table up to size and runs the measured steps there. A
// fill that falls short or a step that fails sets s.stopped; only errors
// that end the whole run are returned.
func (s *series) advance(ctx context.Context, size int) error {
	b, name := s.b, s.name
	step := &sizeResult{Size: size}
	s.run.Steps = append(s.run.Steps, step)
	if size > s.current {
		say("%s: filling the table from %d to %d mappings", name, s.current, size)
		var cpuDone func() error
		if s.prof != nil {
			cpuDone = s.prof.cpu(ctx, profileSeconds(size-s.current), fmt.Sprintf("fill-%d", size))
		}
		t0 := time.Now()
		r, err := b.plbench(ctx, s.lab.LAN[0], s.lab.GatewayLANAddr4.String(),
			load{"natpmp", "map", size - s.current, firstPort + portSpan(s.current), b.prefillBudget, 0})
		step.PrefillSeconds = time.Since(t0).Seconds()
		if cpuDone != nil {
			if err := cpuDone(); err != nil {
				say("%s: %v", name, err)
			}
		}
		if err != nil {
			return err
		}
		step.Prefill = r
		s.current += r.OK
		if s.current < size {
			if r.StoppedEarly {
				s.stop(size, fmt.Sprintf("filling the table took more than %v (%d of %d mappings made)",
					b.prefillBudget, s.current, size))
			} else {
				s.stop(size, fmt.Sprintf("filling the table failed (%d of %d mappings made; errors %v)",
					s.current, size, r.ErrorsByKind))
			}
			step.Notes = append(step.Notes, s.run.StopReason)
			step.Size = s.current
			return nil
		}
	}
	if why := s.measure(ctx, step); why != "" {
		s.stop(size, why)
	}
	return nil
}

// stop ends the series at size for the reason why.
func (s *series) stop(size int, why string) {
	s.stopped = true
	s.run.StoppedAt = size
	s.run.StopReason = fmt.Sprintf("stopped at %s: %s", thousands(size), why)
	say("%s: %s", s.name, s.run.StopReason)
}

// finish ends the series: with the removal of the whole table, or, for
// portleased-state, whose SIGTERM leaves the table in the kernel, with the
// restarts.
func (s *series) finish(ctx context.Context) {
	if s.name == gwPortleasedState {
		s.run.Restarts = s.restarts(ctx)
		return
	}
	s.run.Removal = s.b.removal(ctx, s.lab, s.pl, s.mu, s.current)
}
