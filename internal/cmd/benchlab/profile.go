package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler fetches runtime profiles from portleased's profile socket
// (portleased -profile-socket) into a directory. The socket is a file, so
// benchlab reaches it from the machine's namespace without any network.
type profiler struct {
	dir    string
	client *http.Client
}

func newProfiler(socket, dir string) (*profiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &profiler{dir: dir, client: &http.Client{Transport: tr}}, nil
}

// fetch saves /debug/pprof/<what> as dir/name.
func (p *profiler) fetch(ctx context.Context, what, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://portleased/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("profile %s: %s: %s", what, resp.Status, b)
	}
	f, err := os.Create(filepath.Join(p.dir, name))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", what, err)
	}
	return f.Close()
}

// heap saves the heap profile, taken after a garbage collection, as
// heap-<label>.pprof.
func (p *profiler) heap(ctx context.Context, label string) error {
	return p.fetch(ctx, "heap?gc=1", "heap-"+label+".pprof")
}

// start fetches what over d seconds in the background, as name, and
// returns a function that waits for it.
func (p *profiler) start(ctx context.Context, what string, d time.Duration, name string) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		done <- p.fetch(ctx, fmt.Sprintf("%s?seconds=%d", what, int(d.Seconds())), name)
	}()
	return func() error { return <-done }
}

// trace starts an execution trace of d and returns a function that waits
// for it and saves it as trace-<label>.out (go tool trace).
func (p *profiler) trace(ctx context.Context, d time.Duration, label string) (wait func() error) {
	return p.start(ctx, "trace", d, "trace-"+label+".out")
}

// cpu starts a CPU profile and an execution trace of d and returns a
// function that waits for them and saves them as cpu-<label>.pprof and
// trace-<label>.out.
func (p *profiler) cpu(ctx context.Context, d time.Duration, label string) (wait func() error) {
	profile := p.start(ctx, "profile", d, "cpu-"+label+".pprof")
	trace := p.trace(ctx, d, label)
	return func() error { return errors.Join(profile(), trace()) }
}

// startupWait bounds how long startup waits for a starting daemon's profile
// socket.
const startupWait = 5 * time.Second

// startup starts a CPU profile of d as cpu-<label>.pprof as soon as a
// daemon that is starting serves its profile socket (it tries every 2 ms
// for up to startupWait), and returns a function that waits for it.
func (p *profiler) startup(ctx context.Context, d time.Duration, label string) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(startupWait)
		for {
			err := p.fetch(ctx, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())), "cpu-"+label+".pprof")
			var op *net.OpError
			if err == nil || !errors.As(err, &op) || op.Op != "dial" || time.Now().After(deadline) {
				done <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() error { return <-done }
}
