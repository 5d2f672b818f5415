#!/bin/sh
# cross-check.sh (make cross): compiles, links and vets the client side (the
# library, its protocol packages and cmd/portlease), and builds its test
# binaries, with the go command for every system it supports. Vet type-checks each system's _test.go files too
# (Linux-only lab tests carry a linux build tag). The systems are built side
# by side, one per core. It compiles the standard library once per system:
# 8 minutes on two cores with an empty build cache, which is why `make test`
# runs internal/cmd/crosscheck (the same checks from source) instead.
set -eu
pkgs="./client/... ./mapfile/... ./natpmp/... ./pcp/... ./upnp/... ./cmd/portlease"
targets="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
freebsd/amd64 freebsd/arm64 openbsd/amd64 openbsd/arm64"

# cross-check.sh --one GOOS/GOARCH: one system; its output is printed when
# it fails.
if [ "${1:-}" = "--one" ]; then
	os="${2%/*}" arch="${2#*/}"
	out="$(mktemp)"
	bins="$(mktemp -d)"
	trap 'rm -rf "$out" "$bins"' EXIT
	# The test binaries too, for running on that system (Linux's run here).
	# shellcheck disable=SC2086 # $pkgs is a list of patterns
	if GOOS="$os" GOARCH="$arch" go build -o /dev/null $pkgs >"$out" 2>&1 &&
		GOOS="$os" GOARCH="$arch" go test -c -o "$bins" $pkgs >>"$out" 2>&1 &&
		GOOS="$os" GOARCH="$arch" go vet $pkgs >>"$out" 2>&1; then
		echo "cross-check $os/$arch: built, test binaries built, vetted"
		exit 0
	fi
	echo "cross-check $os/$arch FAILED:"
	cat "$out"
	exit 1
fi

echo "$targets" | tr ' ' '\n' | grep . | xargs -P "$(nproc)" -I{} "$0" --one {} || {
	echo "cross-check: the client side does not build or vet on every system (above)" >&2
	exit 1
}
