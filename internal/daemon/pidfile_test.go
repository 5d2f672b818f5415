package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestPIDFileLockedBySecondHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	p, err := WritePIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("PID file holds %q; want %d", got, os.Getpid())
	}
	// flock locks belong to the open file description: a second open in the
	// same process conflicts just as another process would.
	if _, err := WritePIDFile(path); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("second WritePIDFile = %v; want ErrLocked naming pid %d", err, os.Getpid())
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := p.Remove(); err != nil {
		t.Fatalf("second Remove = %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("PID file still there after Remove: %v", err)
	}
}
