package main

import "github.com/portlease/portlease/internal/sdnotify"

// tell reports states to the service manager (sd_notify: Type=notify in
// dist/systemd/portleased.service). A message that cannot be sent is
// logged; the daemon serves on.
func (d *gatewayDaemon) tell(states ...string) {
	if err := d.notify.Notify(states...); err != nil {
		d.log.Warn("service manager not told", "state", states, "err", err)
	}
}

// reloadTold runs reload between RELOADING=1 and READY=1, so that
// systemctl shows the unit reloading meanwhile.
func (d *gatewayDaemon) reloadTold(reload func()) {
	if err := d.notify.Reload(); err != nil {
		d.log.Warn("service manager not told", "state", sdnotify.Reloading, "err", err)
	}
	reload()
	d.tell(sdnotify.Ready)
}
