package labpeers

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/portlease/portlease/internal/netlab"
)

func TestPortleasedConfigText(t *testing.T) {
	lab := &netlab.Lab{GatewayWANLink: "wan0", GatewayLANLink: "lan0"}
	tests := []struct {
		name    string
		cfg     PortleasedConfig
		want    string
		wantErr string
	}{
		{"the lab's gateway", PortleasedConfig{}, "interface wan0\nlisten on lan0\ncontrol socket none\nstate file none\n", ""},
		{"extra lines and a state file", PortleasedConfig{ExtraLines: []string{"port range 40000-40001"}, StateFile: "/tmp/x/leases"},
			"interface wan0\nlisten on lan0\nport range 40000-40001\ncontrol socket none\nstate file /tmp/x/leases\n", ""},
		{"own directives", PortleasedConfig{Directives: []string{"interface wan0", "listen on 198.51.100.1"}},
			"interface wan0\nlisten on 198.51.100.1\ncontrol socket none\nstate file none\n", ""},
		{"a state file line", PortleasedConfig{ExtraLines: []string{"state  file /x"}}, "", "StateFile instead"},
		{"a relative state file", PortleasedConfig{StateFile: "leases"}, "", "not an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Text(lab)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Text() = %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Text() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// comm returns the command name of process pid.
func comm(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	return strings.TrimSpace(string(b))
}

// TestPortleased: the helper's whole life cycle, with the kernel read
// through nft after each step.
func TestPortleased(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	state := filepath.Join(StateDir(t), "leases")
	p := StartPortleased(t, lab, PortleasedConfig{StateFile: state, Verbose: true})
	conf, err := os.ReadFile(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	control := "control socket " + filepath.Join(filepath.Dir(p.ConfigPath()), ControlSocketName) + "\n"
	if want := "interface wan0\nlisten on lan0\n" + control + "state file " + state + "\n"; string(conf) != want {
		t.Errorf("configuration file:\n%s\nwant:\n%s", conf, want)
	}
	if got, want := p.ControlSocket(), filepath.Join(filepath.Dir(p.ConfigPath()), ControlSocketName); got != want {
		t.Errorf("ControlSocket() = %q; want %q", got, want)
	}
	if p.StateFile() != state {
		t.Errorf("StateFile() = %q; want %q", p.StateFile(), state)
	}
	pid := p.PID()
	if c := comm(t, pid); c != "portleased" {
		t.Fatalf("PID() = %d is %q; want portleased", pid, c)
	}
	if !NFTHasTable(t, lab.Gateway, "inet", "portleased") {
		t.Fatal("no table inet portleased while portleased serves")
	}
	if out := NATPMPC(t, lab.LAN[0], "-g", "198.51.100.1"); !strings.Contains(out, "Public IP address : 203.0.113.1") {
		t.Fatalf("natpmpc: no public address 203.0.113.1:\n%s", out)
	}

	// SIGHUP with a broken file, then a good one, then another.
	if err := p.Reload(t.Context(), "interface wan0", "listen on lan0", "port range 9-8"); err == nil ||
		!strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "portleased.conf:3:") {
		t.Errorf("Reload with a bad port range = %v; want the refusal of line 3", err)
	}
	for _, ports := range []string{"port range 40000-40001", "port range 40000-40002"} {
		if err := p.Reload(t.Context(), "interface wan0", "listen on lan0", ports); err != nil {
			t.Fatalf("Reload with %s: %v", ports, err)
		}
	}
	if err := p.WaitLog(t.Context(), "configuration reloaded"); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(p.Log(), "configuration reloaded"); n != 2 {
		t.Errorf("the log has %d reloads; want 2:\n%s", n, p.Log())
	}
	conf, err = os.ReadFile(p.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if want := "interface wan0\nlisten on lan0\nport range 40000-40002\n" + control + "state file " + state + "\n"; string(conf) != want {
		t.Errorf("configuration file after Reload:\n%s\nwant:\n%s", conf, want)
	}

	if err := p.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p.PID() == pid || comm(t, p.PID()) != "portleased" {
		t.Errorf("after Restart PID() = %d (was %d)", p.PID(), pid)
	}
	if log := p.Log(); strings.Count(log, "serving NAT-PMP") != 2 || !strings.Contains(log, restartMark) {
		t.Errorf("Log() after Restart lacks two starts and the mark:\n%s", log)
	}

	// A crash leaves the table in the kernel; a new start takes it over.
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.PID() != 0 {
		t.Errorf("after Kill PID() = %d; want 0", p.PID())
	}
	if err := p.Kill(); err == nil {
		t.Error("Kill of a killed portleased succeeded")
	}
	if !NFTHasTable(t, lab.Gateway, "inet", "portleased") {
		t.Fatal("SIGKILL removed table inet portleased")
	}
	if err := p.WaitLog(t.Context(), "x"); err == nil {
		t.Error("WaitLog on a stopped portleased succeeded")
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err == nil {
		t.Error("Start of a running portleased succeeded")
	}

	if err := p.Stop(); err != nil {
		t.Fatalf("Stop = %v; want exit status 0", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop = %v; want nothing done", err)
	}
	// With a state file, SIGTERM leaves the mappings for the next start.
	if !NFTHasTable(t, lab.Gateway, "inet", "portleased") {
		t.Error("after SIGTERM with a state file table inet portleased is gone")
	}
	if err := p.Signal(syscall.SIGHUP); err == nil {
		t.Error("Signal to a stopped portleased succeeded")
	}
}

// TestPortleasedExitsBySelf: Stop reports a daemon that exited without being
// asked to.
func TestPortleasedExitsBySelf(t *testing.T) {
	lab := netlab.New(t, netlab.Config{})
	p, err := NewPortleased(lab, PortleasedConfig{Binary: PortleasedBinary(t), Dir: StateDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitLog(t.Context(), "never logged"); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("WaitLog after SIGKILL = %v; want the exit", err)
	}
	if err := p.Restart(t.Context()); err == nil || !strings.Contains(err.Error(), "exited by itself") {
		t.Errorf("Restart after an unasked exit = %v; want an error saying so", err)
	}
	// A start that cannot serve: a missing external interface is waited
	// for, so the configuration names a LAN address the gateway lacks.
	if err := p.SetConfig("interface wan0", "listen on 198.51.100.77"); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("Start with a bad listen address = %v; want its exit", err)
	}
	if p.PID() != 0 {
		t.Errorf("after a failed Start PID() = %d; want 0", p.PID())
	}
}
