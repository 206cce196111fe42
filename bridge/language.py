"""Language tags in BCP 47 case, one rule for the whole flow: what feeds declare ('en_US', 'EN-us', 'zh-hans-cn')
becomes 'en-US', 'zh-Hans-CN' when an entry is read, and again when a post is rendered (bridge/render/language.py
maps the tag to what each platform accepts)."""

from __future__ import annotations

import functools
import re

_BCP47 = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


def normalise_language(value: str | None) -> str | None:
    """A well-formed BCP 47 tag in canonical case ("en_us" -> "en-US", "zh-hans-cn" -> "zh-Hans-CN"), or None for
    empty or unusable values ('English', '*')."""
    if not value or not isinstance(value, str):
        return None
    return _normalised(value)


@functools.lru_cache(maxsize=256)  # feeds and detectors use a few dozen tags, asked for on every post
def _normalised(value: str) -> str | None:
    tag = value.strip().replace("_", "-")
    if not _BCP47.match(tag):
        return None
    subtags = tag.split("-")
    out = [subtags[0].lower()]
    for index, subtag in enumerate(subtags[1:], start=1):
        if len(subtag) == 4 and subtag.isalpha() and index == 1:
            out.append(subtag.title())  # script: Hans, Latn, Cyrl
        elif (len(subtag) == 2 and subtag.isalpha()) or (len(subtag) == 3 and subtag.isdigit()):
            out.append(subtag.upper())  # region: US, 419
        else:
            out.append(subtag.lower())
    return "-".join(out)
