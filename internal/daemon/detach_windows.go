package daemon

import "io"

// CanDetach reports whether Detach can start the program in the background
// on this system. Windows programs run in the foreground or as a service.
const CanDetach = false

// Detach returns ErrNoDetach: on Windows a program runs in the foreground
// or under the service control manager.
func Detach(string, io.Writer) error { return ErrNoDetach }

// report does nothing: no process on Windows was started by Detach.
func report(string, bool) {}
