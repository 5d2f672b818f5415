#!/bin/sh
# fuzz-short.sh SECONDS: runs every fuzz target of the module for SECONDS each
# (a smoke run for `make test`; `make fuzz` runs them longer).
#
# Go 1.26's fuzzing engine may fail a target with a bare "context deadline
# exceeded" as -fuzztime runs out, having found nothing (golang/go#75804,
# fixed in Go 1.27). Such a run is tried once more; a run that wrote a
# failing input, or failed any other way, fails the script at once.
set -eu
t="${1:-5}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# fuzz PKG FN: one run; its output is left in $out.
fuzz() {
	go test -run='^$' -fuzz="^$2\$" -fuzztime="${t}s" "$1" >"$out" 2>&1
}

# deadline_flake: whether the run in $out failed only by the engine's
# deadline race.
deadline_flake() {
	grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written' "$out"
}

grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg="$(dirname "$f")"
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
		echo "fuzz $pkg $fn (${t}s)"
		fuzz "$pkg" "$fn" && continue
		if deadline_flake; then
			echo "fuzz $pkg $fn: the engine's deadline race (golang/go#75804), once more"
			fuzz "$pkg" "$fn" && continue
		fi
		cat "$out"
		exit 1
	done
done
