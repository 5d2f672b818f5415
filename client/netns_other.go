//go:build !linux

package client

// nsRunner is Linux's network-namespace awareness (netns_linux.go): a
// Client created on a thread switched into another namespace opens its
// sockets there. Other systems have no per-thread network namespaces, so
// every socket is the process's and do runs fn where it is.
type nsRunner struct{}

func newNSRunner() *nsRunner { return &nsRunner{} }

// do runs fn.
func (*nsRunner) do(fn func() error) error { return fn() }

func (*nsRunner) close() {}
