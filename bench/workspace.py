"""The benchmark's files: feed documents under nginx's docroot, bridge config files, state databases.

Synthetic feed i lives at /feeds/i.xml (RSS) or /feeds/i.atom and is served from host i % hosts. Changing a
feed rewrites its file with one more entry and a later mtime, so nginx gives it a new ETag and Last-Modified.
The real corpus (../shared/corpus/feeds), when present, is served from /corpus/ and polled alongside.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bench import synthetic
from bench.nginx import Nginx
from tests.render_corpus import CORPUS_DIR, corpus_available, corpus_files

# Feed files start in the past; every change moves a file's mtime a minute further.
MTIME_ORIGIN = 1_780_000_000


class FeedSet:
    """`count` synthetic feeds (plus the corpus when asked) served by `nginx` from `docroot`."""

    def __init__(self, docroot: Path, nginx: Nginx, count: int, *, corpus: bool) -> None:
        self.docroot = docroot
        self.nginx = nginx
        self.count = count
        self.generation = [0] * count
        self.corpus_files: list[str] = []
        (docroot / "feeds").mkdir(parents=True, exist_ok=True)
        if corpus and corpus_available():
            (docroot / "corpus").mkdir(exist_ok=True)
            for name in corpus_files():
                shutil.copyfile(CORPUS_DIR / name, docroot / "corpus" / name)
                self.corpus_files.append(name)

    def path(self, index: int) -> Path:
        extension = "atom" if index % 4 == 3 else "xml"
        return self.docroot / "feeds" / f"{index}.{extension}"

    def write(self, index: int) -> None:
        generation = self.generation[index]
        site = f"{self.nginx.base_url(index)}/site/{index}"
        path = self.path(index)
        path.write_bytes(synthetic.document(index, generation, site))
        stamp = MTIME_ORIGIN + generation * 60
        os.utime(path, (stamp, stamp))

    def write_all(self) -> None:
        for index in range(self.count):
            self.write(index)

    def change(self, indices: range | list[int], new_entries: int = 1) -> None:
        for index in indices:
            self.generation[index] += new_entries
            self.write(index)

    def many(self, count: int) -> list[tuple[str, str, Path]]:
        """(name, url, document) of `count` feeds served from the synthetic documents, each document under
        count / self.count URLs (nginx maps /m/N/feeds/F to /feeds/F): 100,000 feeds without 100,000 files."""
        items = []
        for number in range(count):
            document = self.path(number % self.count)
            items.append((f"h{number:06d}", f"{self.nginx.base_url(number)}/m/{number // self.count}/feeds/{document.name}",
                          document))
        return items

    def feeds(self) -> list[tuple[str, str]]:
        """(name, url) of every feed: the synthetic ones, then the corpus."""
        items = []
        for index in range(self.count):
            items.append((f"f{index:05d}", f"{self.nginx.base_url(index)}/feeds/{self.path(index).name}"))
        for position, name in enumerate(self.corpus_files):
            items.append((f"corpus-{name}", f"{self.nginx.base_url(position)}/corpus/{name}"))
        return items


def write_config(path: Path, state: Path | None, feeds: list[tuple[str, str]], mastodon_url: str | None, *,
                 database_env: str | None = None, interval: str = "15m") -> None:
    """A bridge config for the benchmark: defaults everywhere except the loopback permission and the log. The state
    is the SQLite file `state`, or the PostgreSQL database whose URL is in the environment variable `database_env`."""
    lines = [
        "[bridge]",
        f'database = {{ env = "{database_env}" }}' if database_env else f'state = "{state}"',
        f'interval = "{interval}"',
        "allow_private_addresses = true  # the benchmark's servers are on loopback",
        'log_level = "info"',
        "",
    ]
    accounts = []
    if mastodon_url:
        accounts = ["bench"]
        lines += [
            "[accounts.bench]",
            'type = "mastodon"',
            f'instance = "{mastodon_url}"',
            'access_token = { env = "BENCH_MASTODON_TOKEN" }',
            "",
        ]
    for name, url in feeds:
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"', f"accounts = {accounts!r}".replace("'", '"'), ""]
    path.write_text("\n".join(lines))
