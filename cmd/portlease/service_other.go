//go:build !windows

package main

import "context"

// underServiceManager reports whether a Windows service control manager
// started this process: never here.
func underServiceManager() bool { return false }

// runService is only called under a Windows service control manager.
func runService(ctx context.Context, keep func(ctx context.Context, ready func()) int) int {
	return keep(ctx, func() {})
}
