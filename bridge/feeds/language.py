"""Language tags from feeds, normalised to BCP 47 case: 'en_US' -> 'en-US', 'EN-us' -> 'en-US', 'zh-hans-cn' -> 'zh-Hans-CN'."""

from __future__ import annotations

import re

_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


def normalise_language(value: str | None) -> str | None:
    """A BCP 47-looking tag in canonical case, or None for empty or unusable values ('English', '*')."""
    if not value:
        return None
    tag = value.strip().replace("_", "-")
    if not _TAG.match(tag):
        return None
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        elif len(part) == 2 and part.isalpha() or len(part) == 3 and part.isdigit():
            out.append(part.upper())  # region
        else:
            out.append(part.lower())
    return "-".join(out)
