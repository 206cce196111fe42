"""Byte-identity check for renderer speed work: every payload the corpus and the synthetic bench feeds give, with
several settings (the bench's, a short Mastodon limit, templates with every field), written to one JSON file.

    python -m bench.render_check --write before.json    # with the old code first on PYTHONPATH
    python -m bench.render_check --write after.json
    python -m bench.render_check --compare before.json after.json

A change that makes rendering faster must leave the two files equal (the golden tests pin far fewer posts).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

SYNTHETIC_FEEDS = 25  # x 20 entries: both RSS and Atom documents, as the bench serves them

# (label, platform, account settings beyond the bench's, Mastodon instance limits)
VARIANTS = (
    ("default", "mastodon", {}, None),
    ("default", "bluesky", {}, None),
    ("short", "mastodon", {"template": "{title}\n\n{summary}\n\n{url}\n\n{hashtags}"},
     {"configuration": {"statuses": {"max_characters": 280, "characters_reserved_per_url": 23}}}),
    ("fields", "bluesky", {"template": "{title} ({author}, {feed_title}, {published})\n\n{summary}\n\n{url} {hashtags}",
                            "content_warning": "long read", "images": "attach"}, None),
    ("fields", "mastodon", {"template": "{summary}\n\n{url}\n\n{hashtags}", "images": "attach",
                            "language": "de"}, None),
)


def _entries() -> list[tuple[str, str, object]]:
    from bench.synthetic import document
    from bridge.errors import FeedError
    from bridge.feeds import parse_feed
    from tests.render_corpus import corpus_files, load_feed

    found = []
    for name in corpus_files():
        feed = load_feed(name)
        for index, entry in enumerate(feed.entries if feed else ()):
            found.append((f"{name}#{index}", feed.title or "", entry))
    for number in range(SYNTHETIC_FEEDS):
        try:
            feed = parse_feed(document(number, 0, f"https://s{number}.example"), f"https://s{number}.example/feed")
        except FeedError:
            continue
        for index, entry in enumerate(feed.entries):
            found.append((f"synthetic-{number}#{index}", feed.title or "", entry))
    return found


def payloads() -> dict[str, object]:
    from bridge.config import parse_config
    from bridge.platforms.bluesky.payload import bluesky_payload
    from bridge.platforms.mastodon.limits import MastodonLimits
    from bridge.platforms.mastodon.payload import mastodon_payload
    from bridge.render import RenderError, render_post

    created = datetime(2026, 1, 1, tzinfo=UTC)
    results: dict[str, object] = {}
    entries = _entries()
    for label, platform, extra, limits in VARIANTS:
        account = (
            {"type": "mastodon", "instance": "https://mastodon.example", "access_token": {"env": "BENCH_UNUSED"}}
            if platform == "mastodon"
            else {"type": "bluesky", "handle": "me.example", "app_password": {"env": "BENCH_UNUSED"}}
        )
        config = parse_config({"accounts": {"a": {**account, **extra}},
                               "feeds": [{"name": "f", "url": "https://corpus.example/feed", "accounts": ["a"]}]})
        chosen = config.post_settings(config.feeds[0], "a")
        instance = MastodonLimits.from_dict(limits)
        for where, feed_title, entry in entries:
            key = f"{label}/{platform}/{where}"
            try:
                post = render_post(entry, chosen, feed_title=feed_title)
                if platform == "mastodon":
                    results[key] = mastodon_payload(post, chosen, instance)
                else:
                    results[key] = bluesky_payload(post, chosen, created_at=created)
            except RenderError as exc:
                results[key] = f"RenderError: {exc}"
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.render_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="FILE", help="render everything and write the payloads here")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two written files")
    args = parser.parse_args(argv)
    if args.write:
        results = payloads()
        with open(args.write, "w", encoding="utf-8") as handle:
            json.dump(results, handle, ensure_ascii=False, indent=0, sort_keys=True, default=str)
        print(f"{len(results)} payloads written to {args.write}")
    if args.compare:
        before, after = (json.load(open(path, encoding="utf-8")) for path in args.compare)
        differing = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
        for key in differing[:20]:
            print(f"differs: {key}\n  before: {before.get(key)!r}\n  after:  {after.get(key)!r}")
        print(f"{len(before)} payloads before, {len(after)} after, {len(differing)} differ")
        return 1 if differing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
