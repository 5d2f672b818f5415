#!/bin/sh
# install-deps.sh: installs what `make demo` and `make test` need on a Debian 12
# machine, as root, and only what is missing. Daemons that Debian would start
# on installation (miniupnpd, prometheus) are kept from starting: everything
# that talks to a gateway must run inside the lab's network namespaces, never
# in the machine's own (see shared/docs/peers.md), and of prometheus only
# promtool is wanted.
set -eu

need=""
command -v nft >/dev/null 2>&1 || need="$need nftables"
# Debian's iptables package: iptables-legacy-restore and iptables-nft-restore,
# the programs of portleased's iptables backends (firewall iptables-legacy,
# iptables-nft, iptables).
{ command -v iptables-legacy-restore && command -v iptables-nft-restore; } >/dev/null 2>&1 || need="$need iptables"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v natpmpc >/dev/null 2>&1 || need="$need natpmpc"
command -v upnpc >/dev/null 2>&1 || need="$need miniupnpc"
command -v miniupnpd >/dev/null 2>&1 || need="$need miniupnpd-nftables"
command -v tcpdump >/dev/null 2>&1 || need="$need tcpdump"
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
# curl fetches the metrics in the lab as an operator would.
command -v curl >/dev/null 2>&1 || need="$need curl"
# Debian's prometheus package for promtool (promtool check metrics), without
# what it recommends (prometheus-node-exporter, another daemon).
lean=""
command -v promtool >/dev/null 2>&1 || lean="$lean prometheus"
# Debian's chromium, run headless by the status page's test (e2e, through
# chromedp) inside the lab's LAN host namespace.
# Without its recommends (upower, a notification daemon, the printer set-up
# tools: nothing headless needs), with a font for the screenshots.
command -v chromium >/dev/null 2>&1 || lean="$lean chromium fonts-liberation"

if [ -n "$need$lean" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing packages:$need$lean; run as root (sudo make ...) to install them" >&2
		exit 1
	fi
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
	fi
	echo "install-deps: installing$need$lean"
	apt-get update -qq
	if [ -n "$need" ]; then
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
	fi
	if [ -n "$lean" ]; then
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $lean >/dev/null
	fi
fi
if ! promtool --version >/dev/null 2>&1; then
	echo "install-deps: promtool --version failed; the prometheus package is broken" >&2
	exit 1
fi

# The user portleased drops to: the lab tests run it as root, and it
# becomes this user once serving.
if [ "$(id -u)" = 0 ]; then
	"$(dirname "$0")/add-user.sh"
elif ! id portleased >/dev/null 2>&1; then
	echo "install-deps: user portleased missing; run as root (sudo make ...) to create it" >&2
	exit 1
fi

# Go tools, from the module proxy, pinned.
GOBIN="$(go env GOPATH)/bin"
if [ ! -x "$GOBIN/staticcheck" ]; then
	echo "install-deps: installing staticcheck"
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
