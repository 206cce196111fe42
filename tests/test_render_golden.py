"""Golden files: a corpus entry in, the expected Post and both payloads out — one test per file in
tests/golden/.

Each file names its input (a corpus file and entry index, optional post settings and Mastodon limits) and
stores only the expected outputs; the third-party feed stays in ../shared/corpus. To regenerate after an
intended change, run with BRIDGE_UPDATE_GOLDEN=1 and review the diff: these outputs are what people see.

    {"input": {"file": "medium-hodlhodl-user.rss", "entry": 0, "key": "<checked entry key>",
               "settings": {...PostSettings overrides...}, "mastodon_limits": {"max_characters": 500}},
     "expected": {"post": {...}, "mastodon": {...}, "bluesky": {...}}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bridge.config import CategoryRule, HashtagSettings
from bridge.platforms.bluesky.payload import bluesky_payload
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.platforms.mastodon.payload import mastodon_payload
from bridge.render import render_post

from tests.render_corpus import load_entry, requires_corpus, settings

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("BRIDGE_UPDATE_GOLDEN") == "1"
CREATED = "2024-01-01T00:00:00.000Z"

pytestmark = requires_corpus


def golden_files() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*.json"))


def post_settings(overrides: dict, platform: str = "mastodon"):
    values = dict(overrides)
    if "hashtags" in values:
        values["hashtags"] = HashtagSettings(**values["hashtags"])
    if "rules" in values:
        values["rules"] = tuple(CategoryRule(**rule) for rule in values["rules"])
    return settings(platform, **values)


def render_case(case: dict) -> tuple[str, dict]:
    feed, entry = load_entry(case["file"], case["entry"])
    chosen = post_settings(case.get("settings", {}))
    limits = MastodonLimits(**case.get("mastodon_limits", {}))
    post = render_post(entry, chosen, feed_title=feed.title)
    chosen_bluesky = post_settings(case.get("settings", {}), "bluesky")  # Bluesky's own default templates
    bluesky_post = render_post(entry, chosen_bluesky, feed_title=feed.title)
    return entry.key, {
        "post": post.to_dict(),
        "mastodon": mastodon_payload(post, chosen, limits),
        "bluesky": bluesky_payload(bluesky_post, chosen_bluesky, created_at=CREATED),
    }


def test_golden_directory_covers_many_platforms():
    files = {json.loads(path.read_text(encoding="utf-8"))["input"]["file"] for path in golden_files()}
    platforms = {name.split("-")[0] for name in files}
    assert len(files) >= 15 and len(platforms) >= 15, sorted(platforms)


@pytest.mark.parametrize("path", golden_files(), ids=lambda path: path.stem)
def test_golden(path: Path):
    golden = json.loads(path.read_text(encoding="utf-8"))
    case = golden["input"]
    key, actual = render_case(case)
    if UPDATE:
        case["key"] = key
        path.write_text(json.dumps({"input": case, "expected": actual}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    assert case.get("key") == key, f"{case['file']} entry #{case['entry']} is now {key!r}; the corpus or the parser changed"
    assert "expected" in golden, f"{path.name} has no expected output yet: run with BRIDGE_UPDATE_GOLDEN=1 and review it"
    assert actual == golden["expected"]
