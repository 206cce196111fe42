#!/usr/bin/env bash
# Install the real atproto PLC + PDS used by the tests (tests/pds, from the npm registry).
#
#   bash tests/install-pds.sh            # install, or do nothing when already up to date
#   bash tests/install-pds.sh --force    # reinstall from scratch
#
# Runs `npm ci` in tests/pds with better-sqlite3 compiled from source against the
# running node's headers (no prebuilt binary can be downloaded here). Skips the
# install when node_modules already matches package.json, package-lock.json and
# the node version (a stamp file in node_modules records what was installed).
# Exits non-zero, loudly, when node/npm/headers/compiler are missing or the
# install or its check fails. Takes 100-260 s on 2 cores the first time.
set -euo pipefail

say() { printf 'install-pds: %s\n' "$*"; }
die() {
    printf 'install-pds: ERROR: %s\n' "$*" >&2
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
dir="$here/pds"
stamp="$dir/node_modules/.bridge-install-stamp"
[ -f "$dir/package.json" ] || die "$dir/package.json not found"
[ -f "$dir/package-lock.json" ] || die "$dir/package-lock.json not found"

command -v node >/dev/null 2>&1 || die "node not found on PATH (need Node.js >= 20 with its headers, e.g. Debian/NodeSource package 'nodejs')"
command -v npm >/dev/null 2>&1 || die "npm not found on PATH (need npm >= 11, it comes with Node.js)"
node_bin=$(command -v node)
node_version=$(node --version)
npm_version=$(npm --version 2>/dev/null)
node_major=${node_version#v}
node_major=${node_major%%.*}
[ "$node_major" -ge 20 ] || die "node $node_version is too old: @atproto/pds 0.4.217 needs Node.js >= 20"
npm_major=${npm_version%%.*}
[ "$npm_major" -ge 11 ] || say "warning: npm $npm_version: package.json 'allowScripts' needs npm >= 11 (older npm runs all install scripts)"
say "node $node_version ($node_bin), npm $npm_version"

# What the stamp records: the exact inputs of this install.
sha() { sha256sum "$1" | cut -d' ' -f1; }
want_stamp=$(printf 'package.json %s\npackage-lock.json %s\nnode %s\n' \
    "$(sha "$dir/package.json")" "$(sha "$dir/package-lock.json")" "$node_version")

if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] &&
    [ -f "$dir/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
    say "tests/pds/node_modules is up to date with package-lock.json and node $node_version: nothing to do"
    exit 0
fi

# node-gyp needs the running node's headers: <prefix>/include/node/{node.h,common.gypi},
# where <prefix> is the directory above bin/node (/usr for /usr/bin/node).
nodedir=${npm_config_nodedir:-$(node -p 'require("path").resolve(process.execPath, "..", "..")')}
[ -f "$nodedir/include/node/node.h" ] && [ -f "$nodedir/include/node/common.gypi" ] ||
    die "node headers not found in $nodedir/include/node (install the headers of node $node_version, or set npm_config_nodedir to the directory that has include/node)"
for tool in make g++ python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: it is needed to compile better-sqlite3 (Debian: apt-get install build-essential python3)"
done

say "npm ci in $dir (better-sqlite3 built from source, nodedir=$nodedir)"
start=$(date +%s)
(
    cd "$dir"
    rm -f "$stamp"
    # --strict-allow-scripts: a dependency with an install script that package.json's
    # allowScripts neither allows nor denies fails the install instead of being skipped.
    npm_config_build_from_source=true npm_config_nodedir="$nodedir" \
        npm ci --no-audit --no-fund --strict-allow-scripts
) || die "npm ci failed in $dir (see the output above)"

say "checking the install"
(
    cd "$dir"
    node -e '
        const Database = require("better-sqlite3");
        const db = new Database(":memory:");
        db.prepare("select 1").get();
        db.close();
        require("@atproto/pds");
        require("@did-plc/server");
        require("@atproto/crypto");
    '
) || die "the installed packages do not load (better-sqlite3 not built for node $node_version?)"

printf '%s\n' "$want_stamp" >"$stamp"
say "done in $(($(date +%s) - start)) s"
