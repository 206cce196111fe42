"""Run the fake Mastodon server as its own process.

    python -m tests.mastodon_fake --port 0 [--account alice] [--max-characters 500] ...

Prints one JSON line on stdout once listening::

    {"url": "http://127.0.0.1:PORT", "control": "http://127.0.0.1:PORT/_fake", "pid": 123,
     "accounts": {"alice": "<token>"}}

and serves until SIGTERM/SIGINT, ``POST /_fake/shutdown``, or (with --exit-with-stdin) until
its stdin is closed - use that when the fake must die with the test process; leave it off
for soak tests where the fake must outlive the process that started it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from .profiles import PROFILES
from .server import MastodonFake


def _optional_int(value: str) -> int | None:
    return None if value.lower() in ("none", "null", "") else int(value)


def _optional_float(value: str) -> float | None:
    return None if value.lower() in ("none", "null", "") else float(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.mastodon_fake", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1", "localhost"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-characters", type=int, default=500)
    ap.add_argument("--profile", default="mastodon", choices=sorted(PROFILES),
                    help="answer like this server where servers differ (tests/mastodon_fake/profiles.py)")
    ap.add_argument("--characters-reserved-per-url", type=int, default=None, help="default: the profile's")
    ap.add_argument("--max-media-attachments", type=int, default=4)
    ap.add_argument("--description-limit", type=_optional_int, default=10000,
                    help="'none' omits it from /api/v2/instance (the server then enforces 1500)")
    ap.add_argument("--version", dest="server_version", default=None, help="default: the profile's")
    ap.add_argument("--idempotency-ttl", type=float, default=None, help="default: the profile's")
    ap.add_argument("--media-processing-polls", type=_optional_int, default=1)
    ap.add_argument("--media-processing-seconds", type=_optional_float, default=None)
    ap.add_argument("--account", action="append", default=[],
                    help="create an account: NAME or NAME:scope,scope (repeatable); tokens are printed")
    ap.add_argument("--map-host", action="append", default=[],
                    help="HOST=TARGET: link-card fetches for HOST go to loopback TARGET (ip or ip:port)")
    ap.add_argument("--rate", action="append", default=[],
                    help="FAMILY=LIMIT/PERIOD_SECONDS, e.g. statuses=5/60 (families: per_token, per_user, "
                         "unauthenticated, media, deletes, apps, statuses)")
    ap.add_argument("--oauth-user", default=None, help="auto-approve /oauth/authorize as this user")
    ap.add_argument("--no-cards", action="store_true", help="do not fetch link cards")
    ap.add_argument("--exit-with-stdin", action="store_true", help="exit when stdin reaches EOF")
    args = ap.parse_args(argv)

    rate_limits = {}
    for item in args.rate:
        family, _, spec = item.partition("=")
        limit, _, period = spec.partition("/")
        rate_limits[family.strip()] = (int(limit), int(period))
    hosts = {}
    for item in args.map_host:
        name, _, target = item.partition("=")
        hosts[name.strip().lower()] = target.strip() or "127.0.0.1"

    fake = MastodonFake(
        max_characters=args.max_characters,
        characters_reserved_per_url=args.characters_reserved_per_url,
        profile=args.profile,
        max_media_attachments=args.max_media_attachments,
        description_limit=args.description_limit,
        version=args.server_version,
        host=args.host,
        port=args.port,
        idempotency_ttl=args.idempotency_ttl,
        media_processing_polls=args.media_processing_polls,
        media_processing_seconds=args.media_processing_seconds,
        hosts=hosts,
        card_fetch=not args.no_cards,
        rate_limits=rate_limits or None,
        oauth_auto_approve=args.oauth_user,
    )
    fake.start()
    accounts = {}
    for item in args.account:
        name, _, scopes = item.partition(":")
        accounts[name] = fake.add_account(name, scopes.replace(",", " ") or None)

    done = threading.Event()

    def _stop(*_: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.exit_with_stdin:
        def _watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            done.set()

        threading.Thread(target=_watch_stdin, daemon=True).start()

    print(json.dumps({"url": fake.url, "control": fake.url + "/_fake", "pid": os.getpid(), "accounts": accounts}),
          flush=True)
    # stop when asked over the control API as well
    while not done.wait(0.2):
        if fake._server is None:
            break
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
