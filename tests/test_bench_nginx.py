"""The benchmark's web server: found where distributions put it, or a clear word on what is missing and how to
install it -- before anything runs, and without installing anything when told which binary to use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.nginx import find_nginx

REPO = Path(__file__).resolve().parent.parent


def test_nginx_is_found_off_an_ordinary_users_path(monkeypatch):
    monkeypatch.delenv("BENCH_NGINX", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no /usr/sbin, as for a user who is not root
    found = find_nginx()
    assert found is not None and os.access(found, os.X_OK), "this machine has nginx (.ci/run installs it)"


@pytest.mark.parametrize("named", ["/nonexistent/nginx", "/usr/sbin"])
def test_bench_run_says_what_is_missing_and_how_to_install_it(named):
    done = subprocess.run(["bash", "bench/run", "--quick"], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BENCH_NGINX": named})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        f"bench: $BENCH_NGINX={named} is not an executable file; install it with `sudo apt-get install nginx-light` "
        "(Debian/Ubuntu; `.ci/run` does it when run as root), or put an nginx binary on PATH, or name it in $BENCH_NGINX")
