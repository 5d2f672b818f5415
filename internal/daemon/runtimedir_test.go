package daemon

import "testing"

// TestRuntimeEnvDir: the runtime directory each system's conventions give,
// chosen from the environment.
func TestRuntimeEnvDir(t *testing.T) {
	private := func(string) bool { return true }
	public := func(string) bool { return false }
	for _, tc := range []struct {
		name    string
		goos    string
		env     map[string]string
		euid    int
		home    string
		private func(string) bool
		want    string
	}{
		{"linux user session", "linux", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000, "/home/u", private, "/run/user/1000/portlease"},
		{"linux root session", "linux", map[string]string{"XDG_RUNTIME_DIR": "/run/user/0"}, 0, "/root", private, "/run/user/0/portlease"},
		{"linux root service", "linux", nil, 0, "/root", private, "/run/portlease"},
		{"linux relative XDG ignored", "linux", map[string]string{"XDG_RUNTIME_DIR": "run"}, 0, "/root", private, "/run/portlease"},
		{"linux user without session", "linux", nil, 1000, "/home/u", private, "/home/u/.cache/portlease"},
		{"linux user XDG_CACHE_HOME", "linux", map[string]string{"XDG_CACHE_HOME": "/var/cache/u/"}, 1000, "/home/u", private, "/var/cache/u/portlease"},
		{"freebsd root", "freebsd", nil, 0, "/root", private, "/var/run/portlease"},
		{"openbsd root", "openbsd", nil, 0, "/root", private, "/var/run/portlease"},
		{"freebsd user session", "freebsd", map[string]string{"XDG_RUNTIME_DIR": "/var/run/xdg/u"}, 1001, "/home/u", private, "/var/run/xdg/u/portlease"},
		{"openbsd user", "openbsd", nil, 1000, "/home/u", private, "/home/u/.cache/portlease"},
		{"darwin root", "darwin", map[string]string{"TMPDIR": "/var/folders/zz/x/T/"}, 0, "/var/root", private, "/var/run/portlease"},
		{"darwin user TMPDIR", "darwin", map[string]string{"TMPDIR": "/var/folders/zz/x/T/"}, 501, "/Users/u", private, "/var/folders/zz/x/T/portlease"},
		{"darwin user shared TMPDIR", "darwin", map[string]string{"TMPDIR": "/tmp"}, 501, "/Users/u", public, "/Users/u/Library/Caches/portlease"},
		{"darwin ignores XDG", "darwin", map[string]string{"XDG_RUNTIME_DIR": "/run/user/501"}, 501, "/Users/u", private, "/Users/u/Library/Caches/portlease"},
		{"windows", "windows", map[string]string{"LOCALAPPDATA": `C:\Users\u\AppData\Local`}, -1, `C:\Users\u`, private, `C:\Users\u\AppData\Local\portlease`},
		{"windows service", "windows", map[string]string{"LOCALAPPDATA": `C:\Windows\system32\config\systemprofile\AppData\Local\`}, -1, "", private, `C:\Windows\system32\config\systemprofile\AppData\Local\portlease`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := runtimeEnv{goos: tc.goos, getenv: func(k string) string { return tc.env[k] }, euid: tc.euid, home: tc.home, privateDir: tc.private}
			got, err := e.dir()
			if err != nil || got != tc.want {
				t.Fatalf("dir() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRuntimeEnvDirNowhere(t *testing.T) {
	for _, e := range []runtimeEnv{
		{goos: "windows", getenv: func(string) string { return "" }, euid: -1},
		{goos: "linux", getenv: func(string) string { return "" }, euid: 1000},
		{goos: "darwin", getenv: func(string) string { return "" }, euid: 501, privateDir: func(string) bool { return true }},
	} {
		if got, err := e.dir(); err == nil {
			t.Errorf("%s without environment or home: dir() = %q; want an error", e.goos, got)
		}
	}
}
