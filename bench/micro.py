"""In-process measurements: render throughput on the real corpus, and CLI start-up latency.

The render case alone (no nginx, no feeds to write; what docs/benchmarks.md's *render* row reports):

    .venv/bin/python -m bench.micro --runs 5
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import median
from tests.render_corpus import corpus_available, corpus_files, load_feed


def render_throughput(rounds: int = 3) -> dict:
    """Entries of the corpus rendered to a Mastodon and a Bluesky payload per second (no network: no card)."""
    from bridge.config import parse_config
    from bridge.platforms.bluesky.payload import bluesky_payload
    from bridge.platforms.mastodon.limits import MastodonLimits
    from bridge.platforms.mastodon.payload import mastodon_payload
    from bridge.render import render_post
    from bridge.render.fit import RenderError

    if not corpus_available():
        return {"skipped": "the corpus (../shared/corpus/feeds) is absent"}
    entries = [entry for name in corpus_files() for entry in (load_feed(name).entries if load_feed(name) else [])]
    config = parse_config({
        "accounts": {
            "m": {"type": "mastodon", "instance": "https://mastodon.example", "access_token": {"env": "BENCH_UNUSED"}},
            "b": {"type": "bluesky", "handle": "me.example", "app_password": {"env": "BENCH_UNUSED"}},
        },
        "feeds": [{"name": "corpus", "url": "https://corpus.example/feed", "accounts": ["m", "b"]}],
    })
    feed = config.feeds[0]
    mastodon_settings, bluesky_settings = config.post_settings(feed, "m"), config.post_settings(feed, "b")
    limits = MastodonLimits.from_dict(None)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    timings, cpu_timings, rendered, unrenderable = [], [], 0, 0
    for _ in range(rounds):
        rendered = unrenderable = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        for entry in entries:
            try:
                mastodon_payload(render_post(entry, mastodon_settings), mastodon_settings, limits)
                bluesky_payload(render_post(entry, bluesky_settings), bluesky_settings, created_at=created)
                rendered += 1
            except RenderError:  # an entry with no http(s) link: nothing to post, as in production
                unrenderable += 1
        timings.append(time.perf_counter() - started)
        cpu_timings.append(time.process_time() - cpu_started)
    seconds, cpu_seconds = median(timings), median(cpu_timings)
    # CPU time beside wall time: on a shared machine the wall clock also counts other processes' turns
    return {"entries": rendered, "unrenderable": unrenderable, "seconds": seconds, "runs": timings,
            "entries_per_second": rendered / seconds if seconds else None, "cpu_seconds": cpu_seconds,
            "entries_per_cpu_second": rendered / cpu_seconds if cpu_seconds else None}


def cli_latency(bridge: str, config: Path, large_config: Path, runs: int) -> dict:
    """Wall time of `bridge --help` and `bridge status`, median of `runs` runs each (after one warm-up).

    `status` is timed on the small set's config and state (a big user) and, for information, on the large set's,
    where reading a 10,000-table TOML file alone takes a quarter of a second.
    """
    results = {}
    for label, argv in (("help", [bridge, "--help"]), ("status", [bridge, "--config", str(config), "status"]),
                        ("status_large", [bridge, "--config", str(large_config), "status"])):
        times = []
        for attempt in range(runs + 1):
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if attempt:  # the first run warms the page cache, as any second invocation would find it
                times.append(time.perf_counter() - started)
        results[label] = {"median_seconds": median(times), "runs": times}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description="The render case alone: every corpus "
                                     "entry rendered to a Mastodon and a Bluesky payload, median of --runs runs.")
    parser.add_argument("--runs", type=int, default=5, help="Runs; the median is reported (default 5).")
    args = parser.parse_args(argv)
    result = render_throughput(rounds=args.runs)
    if "skipped" in result:
        print(f"render: skipped: {result['skipped']}")
        return 1
    runs = ", ".join(f"{seconds:.2f}" for seconds in result["runs"])
    print(f"render to both platforms: {result['entries']} entries; median {result['seconds']:.2f} s wall "
          f"({result['entries_per_second']:,.0f} entries/s; runs {runs} s), {result['cpu_seconds']:.2f} s CPU "
          f"({result['entries_per_cpu_second']:,.0f} entries per CPU second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
