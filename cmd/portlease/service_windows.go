package main

import (
	"context"

	"golang.org/x/sys/windows/svc"
)

// underServiceManager reports whether the service control manager started
// this process (`sc.exe create ... binPath= "...portlease.exe keep ..."`).
func underServiceManager() bool {
	is, err := svc.IsWindowsService()
	return err == nil && is
}

// runService runs keep as a Windows service: it reports "start pending",
// then "running" once keep calls ready, and cancels keep's context on a
// stop or shutdown request. It returns keep's exit status, which the
// service control manager records as the service-specific exit code.
func runService(ctx context.Context, keep func(ctx context.Context, ready func()) int) int {
	s := &keepService{ctx: ctx, keep: keep, code: 1}
	if err := svc.Run("portlease", s); err != nil {
		return 1
	}
	return s.code
}

// keepService is the svc.Handler of `portlease keep`.
type keepService struct {
	ctx  context.Context
	keep func(ctx context.Context, ready func()) int
	code int
}

// Execute runs keep until it returns, reporting its state to the service
// control manager.
func (s *keepService) Execute(_ []string, requests <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	ready := make(chan struct{})
	done := make(chan int, 1)
	go func() {
		done <- s.keep(ctx, func() { close(ready) })
	}()
	stopping := false
	for {
		select {
		case code := <-done:
			s.code = code
			return code != 0, uint32(code)
		case <-ready:
			ready = nil
			if !stopping {
				status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
			}
		case r := <-requests:
			switch r.Cmd {
			case svc.Interrogate:
				status <- r.CurrentStatus
			case svc.Stop, svc.Shutdown:
				stopping = true
				status <- svc.Status{State: svc.StopPending}
				cancel()
			}
		}
	}
}
