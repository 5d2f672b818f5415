package dist

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// need returns the path of tool, skipping the test when it is missing,
// or failing it under CI=true (make test installs it: scripts/install-deps.sh).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (scripts/install-deps.sh installs it): %v", tool, err)
		}
		t.Skipf("%s is missing (scripts/install-deps.sh installs it)", tool)
	}
	return p
}

// install runs make install into destdir with prefix, the programs built
// in build. The tools that create the user (useradd, id, chown) are
// replaced by ones that record being called, in calls.
func install(t *testing.T, destdir, prefix, build, calls string) {
	t.Helper()
	make := need(t, "make")
	fake := filepath.Join(t.TempDir(), "fakebin")
	if err := os.Mkdir(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"useradd", "id", "chown"} {
		script := "#!/bin/sh\necho " + tool + " \"$@\" >>'" + calls + "'\nexit 1\n"
		if err := os.WriteFile(filepath.Join(fake, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(make, "-C", "..", "install", "DESTDIR="+destdir, "PREFIX="+prefix,
		"BUILDDIR="+build)
	cmd.Env = append(os.Environ(), "PATH="+fake+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install DESTDIR=%s PREFIX=%s: %v\n%s", destdir, prefix, err, out)
	}
}

// installed is one file or directory make install must lay out.
type installed struct {
	path string
	mode fs.FileMode
}

func layout(prefix string) []installed {
	return []installed{
		{prefix + "/sbin/portleased", 0o755},
		{prefix + "/bin/portlease", 0o755},
		{prefix + "/lib/systemd/system/portleased.service", 0o644},
		{prefix + "/lib/systemd/system/portlease-keep@.service", 0o644},
		{prefix + "/lib/systemd/user/portlease-keep.service", 0o644},
		{prefix + "/lib/sysusers.d/portleased.conf", 0o644},
		{prefix + "/share/doc/portlease/portleased.conf.example", 0o644},
		{"/etc/portleased.conf", 0o644},
		{"/etc/portlease", fs.ModeDir | 0o755},
		{"/var/lib/portleased", fs.ModeDir | 0o750},
	}
}

// TestInstallLayout: make install DESTDIR=... puts every file where it
// belongs with its mode, for a local install and a packager's PREFIX=/usr;
// the units run the programs where they were installed; the user is not
// created (that is the package's job with DESTDIR); and a second install
// keeps the configuration an administrator edited.
func TestInstallLayout(t *testing.T) {
	build := t.TempDir()
	for _, prefix := range []string{"/usr/local", "/usr"} {
		t.Run(strings.TrimPrefix(prefix, "/"), func(t *testing.T) {
			dest := t.TempDir()
			calls := filepath.Join(t.TempDir(), "calls")
			install(t, dest, prefix, build, calls)
			for _, f := range layout(prefix) {
				fi, err := os.Stat(filepath.Join(dest, f.path))
				if err != nil {
					t.Errorf("make install: %v", err)
					continue
				}
				if fi.Mode() != f.mode {
					t.Errorf("make install: %s has mode %v; want %v", f.path, fi.Mode(), f.mode)
				}
			}
			for unit, want := range map[string]string{
				"/lib/systemd/system/portleased.service":      "ExecStart=" + prefix + "/sbin/portleased -d -f /etc/portleased.conf\n",
				"/lib/systemd/system/portlease-keep@.service": "ExecStart=" + prefix + "/bin/portlease keep --foreground --file /etc/portlease/%i.csv ",
				"/lib/systemd/user/portlease-keep.service":    "ExecStart=" + prefix + "/bin/portlease keep --foreground --file %E/portlease/ports.csv ",
			} {
				b, err := os.ReadFile(filepath.Join(dest, prefix, unit))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), want) {
					t.Errorf("installed %s lacks %q", unit, want)
				}
			}
			if b, err := os.ReadFile(calls); err == nil {
				t.Errorf("make install with DESTDIR ran the tools that create the user:\n%s", b)
			}

			conf := filepath.Join(dest, "etc/portleased.conf")
			edited := []byte("interface ppp0\nlisten on br-lan\n")
			if err := os.WriteFile(conf, edited, 0o644); err != nil {
				t.Fatal(err)
			}
			install(t, dest, prefix, build, calls)
			if b, err := os.ReadFile(conf); err != nil || string(b) != string(edited) {
				t.Errorf("a second make install changed /etc/portleased.conf to %q (%v); want it kept", b, err)
			}
		})
	}
}
