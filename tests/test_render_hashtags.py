"""Hashtags from categories (bridge.render.hashtags)."""

from __future__ import annotations

import pytest

from bridge.config import HashtagSettings
from bridge.render.hashtags import category_hashtags, is_valid_hashtag, to_hashtag


@pytest.mark.parametrize(
    "category, tag",
    [
        ("python", "python"),
        ("machine learning", "MachineLearning"),
        ("urban-gardening", "UrbanGardening"),
        ("Marketing & Communications", "MarketingCommunications"),
        ("St Valentine's Day", "StValentinesDay"),
        ("Technology/Open Source", "OpenSource"),
        ("ORM (Object-Relational Mapping)", "ORM"),
        ("#codenewbies", "codenewbies"),
        ("iOS development", "iOSDevelopment"),
        ("Économie sociale", "ÉconomieSociale"),
        ("技術", "技術"),
        ("adwords_api", "adwords_api"),
        ("C4 Model", "C4Model"),
        ("Node.js", "NodeJs"),
    ],
)
def test_to_hashtag(category, tag):
    assert to_hashtag(category) == tag
    assert is_valid_hashtag(tag)


@pytest.mark.parametrize(
    "category",
    ["2018", "", "   ", "x", "https://schemas.google.com/blogger/2008/kind#post", "how to read a science paper", "!!!"],
)
def test_poor_categories_make_no_tag(category):
    assert to_hashtag(category) is None


@pytest.mark.parametrize("tag", ["", "123", "has space", "dash-ed", "dot.ted", "a" * 65, "#hash"])
def test_invalid_hashtags(tag):
    assert not is_valid_hashtag(tag)


def test_dedup_case_insensitive_max_and_order():
    categories = ["Sarah Andersen", "sarah andersen", "LOL", "comics", "extra"]
    assert category_hashtags(categories, HashtagSettings(max=3)) == ["SarahAndersen", "LOL", "comics"]


def test_comma_joined_categories_are_split():
    assert category_hashtags(["life, writing"], HashtagSettings()) == ["life", "writing"]


def test_rename_and_ignore():
    settings = HashtagSettings(max=5, rename={"Machine Learning": "#ML", "Python 3": "Python"}, ignore=["News", "#misc"])
    categories = ["news", "machine learning", "python 3", "Python", "misc", "Rust"]
    assert category_hashtags(categories, settings) == ["ML", "Python", "Rust"]


def test_disabled_or_zero_gives_none():
    assert category_hashtags(["a1", "b2"], HashtagSettings(enabled=False)) == []
    assert category_hashtags(["a1", "b2"], HashtagSettings(max=0)) == []


def test_placeholder_category_ignored():
    assert category_hashtags(["Uncategorized", "Allgemein", "Real"], HashtagSettings()) == ["Real"]
