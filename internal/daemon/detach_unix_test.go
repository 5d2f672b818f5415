//go:build unix

package daemon

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const testEnv = "PORTLEASE_DAEMON_TEST=child"

// TestHelperChild is the detached child of TestDetach.
func TestHelperChild(t *testing.T) {
	if !IsChild(testEnv) {
		t.Skip("only run as TestDetach's child")
	}
	if os.Getenv("FAIL") != "" {
		Fail(testEnv, errors.New("listen on eth9: no such interface"))
		os.Exit(1)
	}
	Warn(testEnv, "no syslog here")
	Ready(testEnv)
	os.Exit(0)
}

func TestDetach(t *testing.T) {
	for _, tc := range []struct {
		fail    bool
		wantErr string
	}{{false, ""}, {true, "listen on eth9: no such interface"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDetachDriver$")
		cmd.Env = append(os.Environ(), "DRIVE=1")
		if tc.fail {
			cmd.Env = append(cmd.Env, "FAIL=1")
		}
		out, err := cmd.CombinedOutput()
		if tc.wantErr == "" && (err != nil || !strings.Contains(string(out), "no syslog here")) {
			t.Fatalf("Detach of a child that warned and became ready: %v\n%s", err, out)
		}
		if tc.wantErr != "" && !strings.Contains(string(out), tc.wantErr) {
			t.Fatalf("Detach of a failing child printed %q; want %q", out, tc.wantErr)
		}
	}
}

// TestDetachDriver plays the parent: it detaches TestHelperChild.
func TestDetachDriver(t *testing.T) {
	if os.Getenv("DRIVE") == "" {
		t.Skip("only run by TestDetach")
	}
	os.Args = []string{os.Args[0], "-test.run=^TestHelperChild$"}
	if err := Detach(testEnv, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
