#!/bin/sh
# Makes the on-disk compatibility fixture (state.tar.gz, manifest.json,
# golden/) with the sdnd and sdnctl of COMMIT (default: HEAD), checked out
# with `git archive` into a temporary directory so the work tree is not
# touched. The driver, TestCompatGenerate (integration/compat_gen_test.go),
# runs from the current tree. See README.md.
#
#   integration/testdata/compat/generate.sh [COMMIT]
set -eu
commit=$(git rev-parse --short "${1:-HEAD}")
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src" "$tmp/bin"
git -C "$root" archive "$commit" | tar -x -C "$tmp/src"
(cd "$tmp/src" && go build -o "$tmp/bin/" ./sdnd ./sdnctl)
cd "$root/integration"
SDN_COMPAT_GENERATE=1 SDN_COMPAT_BIN="$tmp/bin" SDN_COMPAT_COMMIT="$commit" \
	go test -count=1 -run '^TestCompatGenerate$' -v .
