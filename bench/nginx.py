"""A real web server for the benchmark: Debian's nginx, serving the feed files from a folder.

nginx answers conditional GETs itself (ETag from mtime and size, Last-Modified, 304), as a blog's web server
or CDN does. It listens on several loopback addresses (127.0.0.1, 127.0.0.2, ...): each is a distinct host
to bridge, so the per-host concurrency limit is exercised as it is by feeds spread over a few platforms.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
# $BENCH_NGINX names the binary to use (and nothing else is looked for): an nginx outside these places
OVERRIDE = "BENCH_NGINX"
INSTALL_HINT = ("install it with `sudo apt-get install nginx-light` (Debian/Ubuntu; `.ci/run` does it when run as "
                f"root), or put an nginx binary on PATH, or name it in ${OVERRIDE}")


def find_nginx() -> str | None:
    """The nginx binary: $BENCH_NGINX if set, else nginx on PATH, else where distributions put it (/usr/sbin is
    not on an ordinary user's PATH)."""
    if OVERRIDE in os.environ:
        named = os.environ[OVERRIDE]
        return named if os.path.isfile(named) and os.access(named, os.X_OK) else None
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in CANDIDATES if os.access(path, os.X_OK)), None)


def missing_message() -> str:
    """What is missing and how to get it, in one line."""
    if OVERRIDE in os.environ:
        return f"bench: ${OVERRIDE}={os.environ[OVERRIDE]} is not an executable file; {INSTALL_HINT}"
    return f"bench: the benchmark serves its feeds with nginx, which is not installed; {INSTALL_HINT}"


if __name__ == "__main__":  # bench/run asks: prints the binary, or what is missing (exit 1)
    import sys

    binary = find_nginx()
    print(binary or missing_message(), file=sys.stdout if binary else sys.stderr)
    sys.exit(0 if binary else 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CONFIG = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    types {{
        application/rss+xml rss xml;
        application/atom+xml atom;
        application/feed+json json;
        text/html html;
    }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
{listens}
        root {docroot};
        etag on;
        if_modified_since exact;
        # /m/N/feeds/F: the same document under many URLs (the 100,000-feed case: 10 URLs per document)
        rewrite ^/m/[0-9]+(/feeds/.*)$ $1 last;
    }}
}}
"""


class Nginx:
    """nginx on `hosts` loopback addresses, one port, serving `docroot`."""

    def __init__(self, binary: str, docroot: Path, workdir: Path, hosts: int) -> None:
        self.binary = binary
        self.docroot = docroot
        self.workdir = workdir
        self.hosts = [f"127.0.0.{index + 1}" for index in range(hosts)]
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def base_url(self, index: int) -> str:
        """The URL prefix of the `index`-th host (feeds are spread round-robin over the hosts)."""
        return f"http://{self.hosts[index % len(self.hosts)]}:{self.port}"

    def start(self) -> None:
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        # As root, nginx's worker would switch to 'nobody', who cannot read a private temp folder: stay root.
        user = "user root root;" if os.geteuid() == 0 else ""
        listens = "\n".join(f"        listen {host}:{self.port} reuseport;" if i == 0 else f"        listen {host}:{self.port};"
                            for i, host in enumerate(self.hosts))
        config = self.workdir / "nginx.conf"
        config.write_text(CONFIG.format(root=self.workdir, user=user, listens=listens, docroot=self.docroot))
        self.proc = subprocess.Popen([self.binary, "-c", str(config), "-p", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited at start: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                with socket.create_connection((self.hosts[-1], self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start listening within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "Nginx":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
