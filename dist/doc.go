// Package dist holds what a distribution ships besides the programs: the
// systemd units (systemd/), the sysusers.d file that makes portleased's
// user and the example configuration, which `make install` puts in place,
// and the macOS LaunchAgent of portlease keep (launchd/). It has no code;
// its tests check those files with systemd's own tools, the LaunchAgent's
// property list with encoding/xml, and the layout `make install
// DESTDIR=...` produces.
package dist
