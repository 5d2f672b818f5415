package control

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portlease/portlease/gateway"
)

// startSocket serves f on a socket in a new directory of a temporary one,
// as the running user, and returns its path.
func startSocket(t *testing.T, f *fakeTable) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "control")
	ln, err := Listen(path, Owner{UID: os.Getuid(), GID: os.Getgid()})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Table: f, Access: Access{UID: os.Getuid(), GID: os.Getgid()}}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v; want ErrServerClosed", err)
		}
	})
	return path
}

func TestSocket(t *testing.T) {
	path := startSocket(t, newFake())
	for p, want := range map[string]fs.FileMode{path: SocketMode | fs.ModeSocket, filepath.Dir(path): DirMode | fs.ModeDir} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v; want %v", p, fi.Mode(), want)
		}
	}
	c := &Client{Socket: path}
	ctx := context.Background()
	ls, err := c.List(ctx, Query{Protocol: gateway.UDP})
	if err != nil || keys(ls.Leases) != "udp/40001 udp/40300" {
		t.Fatalf("List(udp) = %q, %v", keys(ls.Leases), err)
	}
	if _, err := c.Lease(ctx, gateway.TCP, 1); err == nil || err.Error() != "control: no tcp lease on external port 1" {
		t.Errorf("Lease(tcp 1) = %v; want no tcp lease on external port 1", err)
	}
	d, err := c.DeleteHost(ctx, ls.Leases[0].InternalAddress)
	if err != nil || keys(d.Deleted) != "tcp/40000 tcp/40100 udp/40001" {
		t.Errorf("DeleteHost = %q, %v", keys(d.Deleted), err)
	}
	// Listen again on the same path: another process serves it.
	if _, err := Listen(path, Owner{UID: os.Getuid(), GID: os.Getgid()}); err == nil || !strings.Contains(err.Error(), "another process serves it") {
		t.Errorf("Listen on a served socket = %v; want another process serves it", err)
	}
}

func TestPeerCred(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("unix", path); err == nil {
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred, err := PeerCred(c)
	if err != nil {
		t.Fatal(err)
	}
	if cred.UID != os.Getuid() || cred.GID != os.Getgid() || cred.PID != os.Getpid() {
		t.Errorf("PeerCred = %v; want this process, uid %d gid %d", cred, os.Getuid(), os.Getgid())
	}
	groups, _ := os.Getgroups()
	if len(cred.Groups) != len(groups) {
		t.Errorf("PeerCred groups %v; want %v", cred.Groups, groups)
	}
}

func TestStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // a crashed run's socket file
	err = (&Client{Socket: path}).do(context.Background(), "GET", "/v1/counters", new(Counters))
	if err == nil || !strings.Contains(err.Error(), "connection refused (ECONNREFUSED): no portleased serves it") {
		t.Errorf("a stale socket: %v; want connection refused, no portleased serves it", err)
	}
	ln2, err := Listen(path, Owner{UID: os.Getuid(), GID: os.Getgid()})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln2.Close()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the socket file after Close: %v; want it removed", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path, Owner{UID: os.Getuid(), GID: os.Getgid()}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen over a file = %v; want not a socket", err)
	}
	if _, err := Listen("control", Owner{}); err == nil {
		t.Error("Listen on a relative path: no error")
	}
}

func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{syscall.ENOENT, "no such socket (ENOENT): is portleased running"},
		{syscall.ECONNREFUSED, "connection refused (ECONNREFUSED)"},
		{syscall.EACCES, "permission denied (EACCES): " + dir + " is "},
		{syscall.EACCES, "; run as root or as a member of group "},
	} {
		err := DialError(filepath.Join(dir, "control"), &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", tc.err)})
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "control: connect to "+dir+"/control: ") {
			t.Errorf("DialError(%v) = %v; want %q", tc.err, err, tc.want)
		}
	}
}

func TestAccess(t *testing.T) {
	a := Access{UID: 100, GID: 200}
	for _, tc := range []struct {
		c    Cred
		want bool
	}{
		{Cred{UID: 0, GID: 0}, true},
		{Cred{UID: 100, GID: 100}, true},
		{Cred{UID: 1000, GID: 200}, true},
		{Cred{UID: 1000, GID: 1000, Groups: []int{24, 200}}, true},
		{Cred{UID: 65534, GID: 65534}, false},
		{Cred{UID: 1000, GID: 1000, Groups: []int{24, 201}}, false},
	} {
		if got := a.Admits(tc.c); got != tc.want {
			t.Errorf("Admits(%v) = %v; want %v", tc.c, got, tc.want)
		}
	}
}

func TestRefusedPeersLogged(t *testing.T) {
	var log bytes.Buffer
	now := testNow
	s := &Server{Table: newFake(), Access: Access{UID: 100, GID: 200}, Logger: slog.New(slog.NewTextHandler(&log, nil)),
		Now: func() time.Time { return now }}
	s.init()
	h := s.srv.Handler
	ask := func(c Cred) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/leases", nil)
		r = r.WithContext(context.WithValue(r.Context(), peerKey{}, peerOf{cred: c}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	nobody := Cred{PID: 42, UID: 65534, GID: 65534}
	rec := ask(nobody)
	if rec.Code != 403 || rec.Header().Get("Connection") != "close" || !strings.Contains(rec.Body.String(), "is not root, the daemon's user (uid 100) nor a member of its group (gid 200)") {
		t.Errorf("a stranger: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	for range 5 {
		ask(nobody)
	}
	if n := strings.Count(log.String(), "peer refused"); n != 1 {
		t.Errorf("6 refusals within a minute logged %d times; want once:\n%s", n, log.String())
	}
	now = now.Add(time.Minute)
	ask(nobody)
	if n := strings.Count(log.String(), "peer refused"); n != 2 || !strings.Contains(log.String(), "refused_since_last_log=5") {
		t.Errorf("a refusal a minute later: %d logs; want 2, the second with the 5 not logged:\n%s", n, log.String())
	}
	if rec := ask(Cred{UID: 1000, GID: 1000, Groups: []int{200}}); rec.Code != 200 {
		t.Errorf("a member of the group: %d %s", rec.Code, rec.Body)
	}
}
