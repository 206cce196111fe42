"""urljoin without the cost for the usual case: a link that is already absolute.

urljoin(base, url) gives `url` back unchanged when `url` is an http(s) URL with a lower-case scheme, an
ASCII host, no ';' in its path (urlparse's "params"), no empty '?' or '#', and no whitespace or control
characters (which urlsplit would strip): whatever the base, it either returns such a URL as it is (another
scheme) or re-assembles the same parts. Checking that takes one regex match instead of two urlparse calls.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9.\-_~%!$&'()*+,=:@]+"
    r"(?:/[^\s?#;\x00-\x1f\x7f]*)?"
    r"(?:\?[^\s#\x00-\x1f\x7f]+)?"
    r"(?:#[^\s\x00-\x1f\x7f]+)?\Z"
)


def is_plain_absolute(url: str) -> bool:
    return _PLAIN_ABSOLUTE.match(url) is not None


def join(base: str | None, url: str) -> str:
    """urljoin(base, url), exactly; ValueError for what urljoin cannot parse."""
    if _PLAIN_ABSOLUTE.match(url):
        return url
    return urljoin(base or "", url)
