#!/bin/sh
# fuzz-short.sh SECONDS: runs every fuzz target of the module for SECONDS each
# (a smoke run for `make test`; `make fuzz` runs them longer).
#
# The targets run FUZZJOBS at a time (default: one per core), each with its
# share of the cores as fuzzing workers (one, by default): the start of a
# target (build, seed corpus, baseline coverage) uses one core, so targets
# side by side keep every core busy and the wall time is about divided by
# FUZZJOBS, each still fuzzing for SECONDS.
#
# Go 1.26's fuzzing engine may fail a target with a bare "context deadline
# exceeded" as -fuzztime runs out, having found nothing (golang/go#75804,
# fixed in Go 1.27). Such a run is tried once more; a run that wrote a
# failing input, or failed any other way, fails the script.
set -eu

# fuzz-short.sh --one SECONDS WORKERS PKG FN: one target, retried once on
# the engine's deadline race; its output is printed when it fails.
if [ "${1:-}" = "--one" ]; then
	t="$2" workers="$3" pkg="$4" fn="$5"
	out="$(mktemp)"
	trap 'rm -f "$out"' EXIT
	echo "fuzz $pkg $fn (${t}s)"
	for try in 1 2; do
		if go test -run='^$' -fuzz="^$fn\$" -fuzztime="${t}s" -parallel="$workers" "$pkg" >"$out" 2>&1; then
			exit 0
		fi
		# Only the engine's deadline race is tried again.
		if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"; then
			echo "fuzz $pkg $fn: the engine's deadline race (golang/go#75804), once more"
			continue
		fi
		break
	done
	echo "fuzz $pkg $fn FAILED:"
	cat "$out"
	exit 1
fi

t="${1:-5}"
cores="$(nproc)"
jobs="${FUZZJOBS:-$cores}"
workers="$(( cores / jobs > 1 ? cores / jobs : 1 ))"

grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg="$(dirname "$f")"
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
		echo "$pkg $fn"
	done
done | xargs -P "$jobs" -L 1 "$0" --one "$t" "$workers" || {
	echo "fuzz-short: a fuzz target failed (above)" >&2
	exit 1
}
