#!/bin/sh
# add-user.sh: creates the system user portleased runs as after its start
# (the "user" directive's default), as root, if it does not exist yet. The
# one place `make install` and scripts/install-deps.sh create it;
# dist/sysusers.d/portleased.conf makes the same user where systemd-sysusers
# runs instead.
set -eu

name="${1:-portleased}"
if id "$name" >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "add-user: user $name missing; run as root to create it" >&2
	exit 1
fi
echo "add-user: creating system user $name"
useradd --system --user-group --no-create-home --home-dir /var/lib/portleased \
	--shell /usr/sbin/nologin "$name"
