#!/bin/sh
# add-user.sh: creates the system user portleased runs as (and its group),
# unless it exists. The one place `make install` and install-deps.sh (for
# the lab tests) make it; dist/sysusers.d/portleased.conf makes the same
# user where systemd-sysusers runs instead.
set -eu

user=portleased
if id "$user" >/dev/null 2>&1; then
	exit 0
fi
useradd --system --user-group --no-create-home --home-dir /var/lib/portleased \
	--shell /usr/sbin/nologin "$user"
echo "add-user: created the system user $user"
