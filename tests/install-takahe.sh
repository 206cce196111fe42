#!/usr/bin/env bash
# Install the real Takahē server used by tests/test_takahe_e2e.py, outside the repository.
#
#   bash tests/install-takahe.sh            # install, or do nothing when already up to date
#   bash tests/install-takahe.sh --force    # reinstall from scratch
#   bash tests/install-takahe.sh --print-dir
#
# Extracts ${BRIDGE_SHARED:-../shared}/fixtures/takahe/takahe-*.tar.gz (Takahē's source, BSD-3-Clause; never committed
# here) into ${XDG_CACHE_HOME:-~/.cache}/bridge-tests/takahe-<archive hash>/src, makes a venv of its
# own beside it (its pins -- pydantic 1, httpx 0.23 -- conflict with bridge's), installs its
# requirements and collects its static files. A stamp records the archive, the requirements and the
# python version; when they match, nothing is done. Needs python3 with venv, gcc and the headers of
# libpq, libmemcached, zlib and libjpeg (Debian: postgresql libpq-dev libmemcached-dev gcc libc6-dev
# zlib1g-dev libjpeg-dev; .ci/run installs them). Exits non-zero, loudly, when anything is missing.
# Takes 1-3 min cold on 2 cores; under a second when stamped.
set -euo pipefail

say() { printf 'install-takahe: %s\n' "$*"; }
die() {
    printf 'install-takahe: ERROR: %s\n' "$*" >&2
    exit 1
}

force=0
print_dir=0
for arg in "$@"; do
    case "$arg" in
    --force) force=1 ;;
    --print-dir) print_dir=1 ;;
    -h | --help)
        sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $arg (try --help)" ;;
    esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The shared test material: $BRIDGE_SHARED, else the repository's sibling ../shared (as tests/feedserver.py).
fixtures="${BRIDGE_SHARED:-$here/../../shared}/fixtures/takahe"
shopt -s nullglob
archives=("$fixtures"/takahe-*.tar.gz)
shopt -u nullglob
[ ${#archives[@]} -eq 1 ] ||
    die "expected exactly one takahe-*.tar.gz in ../shared/fixtures/takahe (found ${#archives[@]}); the shared fixtures must sit beside the repository, or set BRIDGE_SHARED"
archive=${archives[0]}

sha() { sha256sum "$1" | cut -d' ' -f1; }
archive_sha=$(sha "$archive")
# tests/takahe_fixture.py finds the install by the same rule: the first 16 hex digits of the archive's sha256.
dir="${XDG_CACHE_HOME:-$HOME/.cache}/bridge-tests/takahe-${archive_sha:0:16}"
if [ "$print_dir" = 1 ]; then
    printf '%s\n' "$dir"
    exit 0
fi
stamp="$dir/.bridge-install-stamp"

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"
python_version=$(python3 -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
want_stamp=$(printf 'archive %s\npython %s\n' "$archive_sha" "$python_version")

if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ] &&
    [ -x "$dir/venv/bin/gunicorn" ] && [ -f "$dir/src/manage.py" ]; then
    say "$dir is up to date with $(basename "$archive") and python $python_version: nothing to do"
    exit 0
fi

# What pip needs to build psycopg (pg_config), pylibmc (libmemcached), pillow (zlib, libjpeg), and
# what the fixture needs to run a throwaway PostgreSQL cluster (initdb, pg_ctl).
for tool in gcc pg_config; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian: apt-get install gcc libpq-dev)"
done
for header in /usr/include/libmemcached/memcached.h /usr/include/zlib.h /usr/include/jpeglib.h; do
    [ -f "$header" ] || die "$header not found (Debian: apt-get install libmemcached-dev zlib1g-dev libjpeg-dev)"
done
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    die "no /usr/lib/postgresql/*/bin/initdb (Debian: apt-get install postgresql)"
python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3 cannot make a venv (Debian: apt-get install python3-venv)"

say "installing $(basename "$archive") into $dir (python $python_version)"
start=$(date +%s)
rm -rf "$dir"
mkdir -p "$dir"
tar -xzf "$archive" -C "$dir" || die "cannot extract $archive"
mv "$dir/takahe" "$dir/src" || die "$archive has no top-level takahe/ directory"
python3 -m venv "$dir/venv" || die "python3 -m venv $dir/venv failed"
"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/src/requirements.txt" ||
    die "pip install -r requirements.txt failed in $dir/venv (see the output above)"

say "collecting static files and checking the install"
# Settings are read from TAKAHE_* variables; collectstatic needs a database URL but never connects.
(
    cd "$dir/src"
    TAKAHE_DATABASE_SERVER="postgres://nobody@127.0.0.1:1/none" TAKAHE_DEBUG=true TAKAHE_SECRET_KEY=install \
        TAKAHE_ENV_FILE=/dev/null "$dir/venv/bin/python" manage.py collectstatic --noinput -v 0
) || die "manage.py collectstatic failed in $dir/src (see the output above)"
"$dir/venv/bin/python" -c 'import django, psycopg, pylibmc, PIL, gunicorn' ||
    die "Takahē's requirements do not import in $dir/venv"

printf '%s\n' "$want_stamp" >"$stamp"
say "done in $(($(date +%s) - start)) s"
