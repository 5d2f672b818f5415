#!/bin/sh
# fuzz-short.sh SECONDS: runs every fuzz target of the module for SECONDS each
# (a smoke run for `make test`; `make fuzz` runs them longer).
set -eu
t="${1:-5}"
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg="$(dirname "$f")"
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | cut -d' ' -f2); do
		echo "fuzz $pkg $fn (${t}s)"
		go test -run='^$' -fuzz="^${fn}\$" -fuzztime="${t}s" "$pkg" >/dev/null || {
			go test -run='^$' -fuzz="^${fn}\$" -fuzztime="${t}s" "$pkg"
			exit 1
		}
	done
done
