#!/bin/sh
# bench.sh: `make bench`. Measures portleased and miniupnpd side by side in the
# network lab (issue 5), portleased with a state file against portleased
# without, then its restart with the leases kept (issue 9; the state file is
# in a temporary directory under /var/tmp, -state-dir), and portleased on its
# iptables-nft and iptables-legacy backends up to 10,000 mappings (issue 13;
# -iptables-max-size), and writes bench/results.json,
# bench/BENCHMARKS-generated.md and bench/rate.png. Needs root (namespaces,
# nftables) and the iptables package for the iptables backends; installs
# gnuplot-nox for the plot when it is missing. Arguments are passed to
# benchlab, e.g. ./scripts/bench.sh -sizes 0,1000 -gateways portleased.
# Every gateway and client runs inside the lab's namespaces, never in the
# machine's own.
set -eu
cd "$(dirname "$0")/.."
GO="${GO:-go}"

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root (network namespaces, nftables); run sudo make bench" >&2
	exit 1
fi
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "bench: installing gnuplot-nox"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
fi

"$GO" build -o bin/ ./cmd/portleased ./cmd/plbench
cmdline="make bench"
if [ $# -gt 0 ]; then
	cmdline="make bench BENCHFLAGS='$*'"
fi
"$GO" run ./internal/cmd/benchlab -portleased bin/portleased -plbench bin/plbench -cmdline "$cmdline" "$@"

# BENCHMARKS.md: the generated report on top, then everything from the marker
# on (the targets and the Go benchmarks, written by hand).
marker='<!-- end of make bench output -->'
{
	sed 's#](rate.png)#](bench/rate.png)#' bench/BENCHMARKS-generated.md
	echo
	sed -n "/^$marker\$/,\$p" BENCHMARKS.md
} >BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md, bench/results.json and bench/rate.png"
