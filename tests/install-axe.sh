#!/usr/bin/env bash
# Download axe-core (the accessibility rules engine, from npm) for the status page's browser test
# (tests/test_status_page.py) into ${XDG_CACHE_HOME:-~/.cache}/bridge-tests/axe-core-VERSION/axe.min.js.
# Does nothing when it is already there. The tarball's sha512 must match the one pinned here.
# Exits non-zero, loudly, when npm is missing or the download fails.
set -euo pipefail

version=4.14.1
integrity='sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=='
dir="${XDG_CACHE_HOME:-$HOME/.cache}/bridge-tests/axe-core-$version"
[ -s "$dir/axe.min.js" ] && exit 0

command -v npm >/dev/null 2>&1 || { echo "install-axe: ERROR: npm not found on PATH (it comes with Node.js)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "axe-core@$version" >/dev/null)
tarball="$work/axe-core-$version.tgz"
actual=$(python3 -c 'import base64, hashlib, sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tarball")
[ "$actual" = "$integrity" ] || { echo "install-axe: ERROR: axe-core-$version.tgz is $actual, expected $integrity" >&2; exit 1; }
tar -xzf "$tarball" -C "$work" package/axe.min.js
mkdir -p "$dir"
mv "$work/package/axe.min.js" "$dir/axe.min.js.part" && mv "$dir/axe.min.js.part" "$dir/axe.min.js"
echo "install-axe: axe-core $version in $dir"
