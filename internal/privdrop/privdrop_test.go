package privdrop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// needRoot skips a test that changes owners or credentials when not run
// as root; under CI=true it fails instead.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("privdrop: this test needs root")
	}
	t.Skip("needs root")
}

// nobody is the unprivileged account the tests drop to.
func nobody(t *testing.T) Account {
	t.Helper()
	a, err := Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLookupRefusesMissingUserAndRoot(t *testing.T) {
	if _, err := Lookup("portleased-no-such-user"); err == nil || !strings.Contains(err.Error(), "useradd --system") || !strings.Contains(err.Error(), "portleased-no-such-user") {
		t.Errorf("Lookup of a missing user = %v; want an error naming it and the useradd line", err)
	}
	if _, err := Lookup("root"); err == nil || !strings.Contains(err.Error(), "uid 0") {
		t.Errorf("Lookup(root) = %v; want a refusal", err)
	}
}

// reachableTemp returns a directory the account can reach: t.TempDir() is
// 0700, so it is opened to others.
func reachableTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for p := dir; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPrepareStateDirCreatesOneForTheUser(t *testing.T) {
	needRoot(t)
	acct := nobody(t)
	dir := filepath.Join(reachableTemp(t), "a", "state")
	if err := prepareStateDir(filepath.Join(dir, "leases"), "/nonexistent", acct); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	if int(st.Uid) != acct.UID || int(st.Gid) != acct.GID || info.Mode().Perm() != StateDirMode {
		t.Errorf("created %s: uid %d gid %d mode %v; want %d %d %v", dir, st.Uid, st.Gid, info.Mode(), acct.UID, acct.GID, StateDirMode)
	}
}

func TestPrepareStateDirTakesOverItsOwn(t *testing.T) {
	needRoot(t)
	acct := nobody(t)
	dir := filepath.Join(reachableTemp(t), "portleased")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "leases")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prepareStateDir(file, dir, acct); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, file} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := ownerOf(info); uid != acct.UID {
			t.Errorf("%s owned by %d after the takeover; want %d", p, uid, acct.UID)
		}
	}
}

func TestPrepareStateDirRefusesWhatTheUserCannotWrite(t *testing.T) {
	needRoot(t)
	acct := nobody(t)
	open := reachableTemp(t)
	closed := filepath.Join(open, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(closed, "inner"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(closed, "inner"), 0o777); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"a root-owned directory", filepath.Join(open, "leases"), "cannot write in it"},
		{"a directory under an unreachable one", filepath.Join(closed, "inner", "leases"), "cannot reach it"},
	} {
		err := prepareStateDir(tc.file, "/nonexistent", acct)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nobody") {
			t.Errorf("%s: %v; want an error naming the user and %q", tc.name, err, tc.want)
		}
	}
}

// childEnv marks the test binary run by TestBecomeDropsEveryThread.
const childEnv = "PRIVDROP_TEST_CHILD"

// TestBecomeDropsEveryThread drops a child process (the drop cannot be
// undone) with threads of its own to nobody, and checks every thread's
// /proc status, and what a program it runs gets.
func TestBecomeDropsEveryThread(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		becomeChild()
		return
	}
	needRoot(t)
	for _, o := range []Options{{}, {BindService: true}, {Programs: NetAdminPrograms}, {BindService: true, Programs: RawSocketPrograms}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBecomeDropsEveryThread$")
		cmd.Env = append(os.Environ(), childEnv+"=1", fmt.Sprintf("PROGRAMS=%d", o.Programs))
		if o.BindService {
			cmd.Env = append(cmd.Env, "BIND=1")
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		var threads []ThreadStatus
		line, program, _ := strings.Cut(string(out), "\n")
		if err := json.Unmarshal([]byte(line), &threads); err != nil {
			t.Fatalf("child printed %q: %v", out, err)
		}
		// What a program the dropped process runs gets: o.Inherited(),
		// effective, and nothing more.
		st, err := parseStatus([]byte(program))
		if err != nil {
			t.Fatalf("status of the child's program: %v\n%s", err, program)
		}
		if want := MaskOf(o.Inherited()...); st.CapEff != want || st.CapPrm != want || st.CapAmb != want {
			t.Errorf("%+v: the child's program has CapEff %#x, CapPrm %#x, CapAmb %#x; want %#x", o, st.CapEff, st.CapPrm, st.CapAmb, want)
		}
		if len(threads) < 5 {
			t.Errorf("child had %d threads; want the main one and the 4 it locked", len(threads))
		}
		if err := CheckThreads(threads, o, o.Mask()); err != nil {
			t.Error(err)
		}
		acct := nobody(t)
		for _, th := range threads {
			if th.UID != [4]int{acct.UID, acct.UID, acct.UID, acct.UID} || th.GID != [4]int{acct.GID, acct.GID, acct.GID, acct.GID} ||
				len(th.Groups) != 1 || th.Groups[0] != acct.GID {
				t.Errorf("thread %d: Uid %v Gid %v Groups %v; want nobody's alone", th.TID, th.UID, th.GID, th.Groups)
			}
		}
	}
}

// becomeChild starts threads, drops to nobody, and prints the status of
// every thread as JSON.
func becomeChild() {
	release := make(chan struct{})
	var started, done sync.WaitGroup
	for range 4 {
		started.Add(1)
		done.Go(func() {
			runtime.LockOSThread()
			started.Done()
			<-release
		})
	}
	started.Wait()
	fail := func(err error) {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	acct, err := Lookup("nobody")
	if err != nil {
		fail(err)
	}
	programs, err := strconv.Atoi(os.Getenv("PROGRAMS"))
	if err != nil {
		fail(err)
	}
	if err := Become(acct, Options{BindService: os.Getenv("BIND") != "", Programs: Programs(programs)}); err != nil {
		fail(err)
	}
	threads, err := ReadThreads(os.Getpid())
	if err != nil {
		fail(err)
	}
	close(release)
	done.Wait()
	program, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		fail(err)
	}
	b, _ := json.Marshal(threads)
	os.Stdout.Write(append(b, '\n'))
	os.Stdout.Write(program)
	os.Exit(0)
}

func TestNarrowRefusesWithoutNetAdmin(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		narrowChild()
		return
	}
	needRoot(t)
	acct := nobody(t)
	// The test binary lies in a directory only root can reach.
	exe := filepath.Join(reachableTemp(t), "privdrop.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestNarrowRefusesWithoutNetAdmin$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(acct.UID), Gid: uint32(acct.GID)}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "without CAP_NET_ADMIN") {
		t.Errorf("Narrow as nobody without capabilities: %v, %q; want a refusal naming CAP_NET_ADMIN", err, out)
	}
}

func narrowChild() {
	if err := Narrow(Options{}); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	os.Exit(0)
}

func TestCapNames(t *testing.T) {
	if got := capName(cap.NET_ADMIN); got != "CAP_NET_ADMIN" {
		t.Errorf("capName = %q", got)
	}
	if got := (Options{BindService: true}).Mask(); got != 0x1400 {
		t.Errorf("Mask = %#x; want 0x1400", got)
	}
}

// TestProgramsOf: each backend's programs get what they need and no more:
// iptables-nft's CAP_NET_ADMIN, iptables-legacy's (and the system's
// iptables, which may be it) CAP_NET_ADMIN and CAP_NET_RAW, nftables' none
// (it has no programs).
func TestProgramsOf(t *testing.T) {
	for _, tc := range []struct {
		backend         string
		kept, inherited uint64
	}{
		{"nftables", 1 << cap.NET_ADMIN, 0},
		{"iptables-nft", 1 << cap.NET_ADMIN, 1 << cap.NET_ADMIN},
		{"iptables-legacy", 1<<cap.NET_ADMIN | 1<<cap.NET_RAW, 1<<cap.NET_ADMIN | 1<<cap.NET_RAW},
		{"iptables", 1<<cap.NET_ADMIN | 1<<cap.NET_RAW, 1<<cap.NET_ADMIN | 1<<cap.NET_RAW},
	} {
		o := Options{Programs: ProgramsOf(tc.backend)}
		if got, inh := o.Mask(), MaskOf(o.Inherited()...); got != tc.kept || inh != tc.inherited {
			t.Errorf("%s: kept %#x, inherited %#x; want %#x, %#x", tc.backend, got, inh, tc.kept, tc.inherited)
		}
	}
}

// TestCheckThreadsRefusesRoot: the test process itself, not dropped, fails
// the check on every thread, with what is wrong named.
func TestCheckThreadsRefusesRoot(t *testing.T) {
	needRoot(t)
	threads, err := ReadThreads(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	err = CheckThreads(threads, Options{}, Options{}.Mask())
	if err == nil {
		t.Fatal("CheckThreads accepted a root process")
	}
	for _, want := range []string{"Uid [0 0 0 0]", "Gid [0 0 0 0]", "CapEff", "NoNewPrivs 0", "CapBnd"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckThreads = %v; want it to name %q", err, want)
		}
	}
	if got := strings.Count(err.Error(), "thread "); got != len(threads) {
		t.Errorf("CheckThreads named %d threads; the process has %d", got, len(threads))
	}
}

// TestCheckThreadsRefusesRootGroup: a thread that gave up uid 0 but kept
// gid 0 or group 0 is not dropped.
func TestCheckThreadsRefusesRootGroup(t *testing.T) {
	o := Options{}
	good := ThreadStatus{TID: 1, UID: [4]int{999, 999, 999, 999}, GID: [4]int{995, 995, 995, 995}, Groups: []int{995},
		CapPrm: o.Mask(), CapEff: o.Mask(), CapBnd: o.Mask(), NoNewPrivs: true}
	if err := CheckThreads([]ThreadStatus{good}, o, o.Mask()); err != nil {
		t.Fatalf("a dropped thread: %v", err)
	}
	gid0, group0 := good, good
	gid0.GID[2] = 0
	group0.Groups = []int{995, 0}
	for _, tt := range []struct {
		th   ThreadStatus
		want string
	}{{gid0, "Gid [995 995 0 995]"}, {group0, "Groups [995 0]"}} {
		if err := CheckThreads([]ThreadStatus{tt.th}, o, o.Mask()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckThreads = %v; want it to name %q", err, tt.want)
		}
	}
}
