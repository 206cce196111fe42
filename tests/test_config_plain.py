"""Plain [[feeds]] tables (name, url, accounts, interval, enabled: a hosted instance's many feeds) are read lean,
and read exactly like the full model: same settings, same order, same errors naming the same place."""

from __future__ import annotations

import pytest

from bridge.config import FeedConfig, parse_config
from bridge.errors import ConfigError

ACCOUNTS = {"masto": {"type": "mastodon", "instance": "https://m.example"}}


def config(feeds: list[dict]):
    return parse_config({"accounts": ACCOUNTS, "feeds": feeds})


def test_plain_tables_read_like_full_ones_in_file_order():
    feeds = [
        {"name": "a", "url": "https://a.example/feed", "accounts": ["masto"]},
        {"name": "b", "url": "https://b.example/feed", "accounts": ["masto"], "template": "{title} {url}"},
        {"name": "c", "url": "https://c.example/feed", "interval": "1h", "enabled": False},
    ]
    read = config(feeds)
    assert [feed.name for feed in read.feeds] == ["a", "b", "c"]
    for feed, table in zip(read.feeds, feeds):
        assert feed == FeedConfig.model_validate(table)
        for setting in FeedConfig.model_fields:
            assert getattr(feed, setting) == getattr(FeedConfig.model_validate(table), setting), setting
    assert read.feed_interval(read.feed("c")) == 3600 and read.feed("c").enabled is False
    assert read.post_settings(read.feed("a"), "masto") == read.post_settings(FeedConfig.model_validate(feeds[0]), "masto")


@pytest.mark.parametrize("bad, key, words", [
    ({"name": "bad name", "url": "https://x.example/"}, 'feeds[1] (name = \'bad name\').name', "pattern"),
    ({"name": "x", "url": "https://x.example/\n"}, "feeds[1] (name = 'x').url", "control characters"),
    ({"name": "x", "url": "https://x.example/", "interval": "0s"}, "feeds[1] (name = 'x').interval", "out of range"),
    ({"name": "x", "url": "https://x.example/", "hashtags": {"max": 99}}, "feeds[1] (name = 'x').hashtags.max", ""),
    ({"name": "x", "url": "ftp://x.example/"}, "feeds[1] (name = 'x').url", "not an http(s) URL"),
    ({"name": "x", "url": "https://x.example/", "accounts": ["nobody"]}, "feeds[1] (name = 'x').accounts", "not defined"),
])
def test_a_bad_table_is_named_by_its_place_in_the_file(bad, key, words):
    feeds = [{"name": "a", "url": "https://a.example/feed", "template": "{title}"}, bad,
             {"name": "z", "url": "https://z.example/feed", "template": "{title}"}]
    with pytest.raises(ConfigError) as raised:
        config(feeds)
    assert key in str(raised.value) and words in str(raised.value)
