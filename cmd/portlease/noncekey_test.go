package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/portlease/portlease/client"
)

func TestNonceKeyMadeAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "portlease", "pcp-key")
	key, err := loadNonceKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != nonceKeyLen {
		t.Fatalf("made a key of %d bytes; want %d", len(key), nonceKeyLen)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %04o; want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("key directory mode %04o; want 0700", perm)
	}
	again, err := loadNonceKey(path)
	if err != nil || string(again) != string(key) {
		t.Fatalf("second load = %x, %v; want the same key %x", again, err, key)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".pcp-key-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestNonceKeyRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := strings.Repeat("k", 32)
	readable := write("readable", 0o644, good)
	short := write("short", 0o600, "tiny")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(write("target", 0o600, good), link); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{readable, "mode 0644"},
		{short, "want at least"},
		{link, "symbolic link"},
	}
	if os.Geteuid() == 0 {
		// Only root can give a file away.
		foreign := write("foreign", 0o600, good)
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ path, want string }{foreign, "owned by uid 65534"})
	}
	for _, c := range cases {
		_, err := loadNonceKey(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("loadNonceKey(%s) = %v; want an error naming the path and saying %q", c.path, err, c.want)
		}
	}
}

func TestNonceKeyDefaultPath(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("XDG_STATE_HOME is a convention of Linux and the BSDs")
	}
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	p, err := defaultNonceKeyPath()
	if err != nil || p != filepath.Join(state, "portlease", "pcp-key") {
		t.Fatalf("with XDG_STATE_HOME: %q, %v", p, err)
	}
	home := t.TempDir()
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", home)
	p, err = defaultNonceKeyPath()
	want := filepath.Join(home, ".local", "state", "portlease", "pcp-key")
	switch {
	case os.Geteuid() == 0 && runtime.GOOS == "linux":
		want = "/var/lib/portlease/pcp-key"
	case os.Geteuid() == 0:
		want = "/var/db/portlease/pcp-key"
	}
	if err != nil || p != want {
		t.Fatalf("without XDG_STATE_HOME: %q, %v; want %q", p, err, want)
	}
}

func TestApplyNonceKeySkipsOtherProtocols(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pcp-key")
	for _, m := range []client.Method{client.NATPMP, client.UPnP} {
		cfg := client.Config{Method: m}
		if err := applyNonceKey(&cfg, path); err != nil || cfg.NonceKey != nil {
			t.Errorf("%s: key %x, %v; want none read", m, cfg.NonceKey, err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a key file was made for NAT-PMP or UPnP: %v", err)
	}
	cfg := client.Config{Method: client.Auto}
	if err := applyNonceKey(&cfg, path); err != nil || len(cfg.NonceKey) != nonceKeyLen {
		t.Errorf("auto: key %x, %v; want one made", cfg.NonceKey, err)
	}
}
