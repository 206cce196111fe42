"""Entry identity: keys, canonical links and the aliases that survive a feed's re-keying.

Three decisions live here.

* **Key** (`entry_key`): the feed's own identifier, verbatim (stripped of surrounding whitespace) — the RSS
  guid, Atom id or JSON Feed id. Without one, the entry's canonical link. Without that, ``sha256:`` plus the
  hex digest of title and date. Guids and links are NOT prefixed: a feed that starts giving guids equal to its
  permalinks keeps its keys. Only the hash fallback is prefixed, so it can never collide with a real id.
  (feedparser resolves a *relative* guid/id against the feed URL, so such keys carry the feed's host.)

* **Canonical link** (`canonical_link`): the link as the site gives it, minus what was added for tracking.
  Removed: tracking query parameters (utm_*, fbclid, gclid, mc_cid/mc_eid, Medium's ``source=rss-…``,
  Le Monde's ``xtor=RSS-…`` and the rest of `TRACKING_PARAMS`) and tracking fragments (``#atom-everything``,
  ``#rss``, ``#xtor=…``, ``#utm_…``). Normalised: scheme and host lower-case, default port dropped, empty
  path -> ``/``. Kept: every other parameter in its order and encoding, the path exactly (trailing slash
  included), and any other fragment — some sites use fragments as identity (Scripting News:
  ``scripting.com/2017/06/26.html#a080605`` and ``…#a030658`` are two posts).

* **Shared ids** (`separate_shared_keys`): a feed may give one guid to two different posts in the same document
  (Scripting News: two posts of 24 June 2017 under ``…24.html#a100632``, with different text and dates). Entries
  sharing a key, published at different times, with different titles (or, untitled, different texts) are
  different posts: each gets
  ``<key> [<published, UTC>]`` (`shared_key`). A verbatim repeat is dropped (the first copy wins). When the
  other post leaves the document, the one left is known under either form: the pipeline looks for the other
  form (`other_key_forms`) before calling it new.

* **Aliases** (`link_aliases`): comparison forms of a link, never shown to anyone: no scheme, lower-case host
  without ``www.``, no default port, no trailing slash, no tracking parameters, remaining parameters sorted,
  percent-escapes normalised. The first alias is the main one; more follow for known equivalent forms
  (``…/index.html`` -> ``…/``; a Medium post id -> ``medium.com/p/<id>``, the form of Medium's guids, which
  survives Medium's move from ``medium.com/@user/…`` to ``user.medium.com/…``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit, urlunsplit

# Query parameters that only say where a click came from. Keys compare case-insensitively.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "twclid",
        "ttclid", "li_fat_id", "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi", "hsctatracking", "_ga", "_gl",
        "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "wt.mc_id", "wt_mc", "xtor", "ncid", "ref_src",
        "ref_url", "at_medium", "at_campaign", "at_source", "rss_source", "cmpid", "ito", "s_cid", "spm",
    }
)
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_")
# Parameters that are tracking only when their value says "this came from a feed": Medium's
# ?source=rss-b1f3d322dadf------2, ?ref=rss, ?from=feed ... (?source=... elsewhere may be real).
FEED_VALUED_PARAMS = frozenset({"source", "ref", "from", "src", "via", "rss", "feed"})
_FEED_VALUE = re.compile(r"^(rss|atom|feed|feedly|newsletter)\b", re.IGNORECASE)
_TRACKING_FRAGMENT = re.compile(r"^(?:(?:atom|rss|feed)(?:-[\w-]*)?|xtor=.*|utm_.*|ref=(?:rss|feed).*)$", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}
_INDEX_DOCUMENT = re.compile(r"/(?:index|default)\.(?:html?|php|aspx?)$", re.IGNORECASE)
_MEDIUM_POST_ID = re.compile(r"-([0-9a-f]{10,16})$")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# Lower-case scheme and host, no user, no port or one that is kept (`_kept_port`), a path, no query or fragment:
# canonical as it is.
_ALREADY_CANONICAL = re.compile(
    r"(https?)://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::([1-9][0-9]{0,4}))?/[^\s?#\x00-\x1f\x7f]*\Z"
)
# A canonical link whose aliases need no parsing: its path has only characters that no escaping touches.
_PLAIN_LINK = re.compile(r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::([1-9][0-9]{0,4}))?(/[A-Za-z0-9\-._~/]*)\Z")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def is_tracking_param(name: str, value: str) -> bool:
    key = unquote(name).strip().lower()
    if key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES):
        return True
    return key in FEED_VALUED_PARAMS and bool(_FEED_VALUE.match(unquote(value).strip()))


def strip_tracking_query(query: str) -> str:
    """Drop tracking parameters; keep the others in their order and their original encoding."""
    if not query:
        return ""
    kept = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if not is_tracking_param(name.replace("+", " "), value.replace("+", " ")):
            kept.append(part)
    return "&".join(kept)


def _netloc(scheme: str, host: str, port: int | None, userinfo: str, *, keep_www: bool = True) -> str:
    host = host.lower().rstrip(".")
    if not keep_www and host.startswith("www."):
        host = host[4:]
    if ":" in host and not host.startswith("["):  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        netloc += f":{port}"
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return netloc


def _split(url: str):
    url = url.strip()
    if url.startswith("//"):
        url = "https:" + url
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: leave the authority as given
        port = None
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return parts, port, userinfo


def canonical_link(url: str) -> str:
    """The link as the site gives it, without tracking parameters or tracking fragments.

    ``url`` should be absolute (the parser resolves relative links against the feed first); a protocol-relative
    ``//host/path`` gets ``https:``; anything without a host is returned stripped but otherwise unchanged.
    See the module docstring for what is removed and what is kept, and why fragments are kept.
    """
    match = _ALREADY_CANONICAL.match(url)
    if match and _kept_port(match.group(1), match.group(2)):
        return url
    return _canonicalise(url)


def _kept_port(scheme: str, port: str | None) -> bool:
    """True when the port (digits without a leading zero, or none) stays as written: a valid, non-default one."""
    return port is None or (int(port) <= 65535 and DEFAULT_PORTS[scheme] != int(port))


def _canonicalise(url: str) -> str:
    try:
        parts, port, userinfo = _split(url)
    except ValueError:  # unparseable (a malformed IPv6 literal): nothing to canonicalise
        return url.strip()
    if not parts.netloc or not parts.hostname:
        return url.strip()
    scheme = parts.scheme.lower()
    fragment = "" if _TRACKING_FRAGMENT.match(parts.fragment) else parts.fragment
    return urlunsplit(
        (
            scheme,
            _netloc(scheme, parts.hostname, port, userinfo),
            parts.path or "/",
            strip_tracking_query(parts.query),
            fragment,
        )
    )


def _normalise_escapes(text: str, safe: str) -> str:
    """Decode escaped unreserved characters, upper-case the other escapes, escape what needs escaping."""

    def fix(match: re.Match) -> str:
        char = chr(int(match.group(0)[1:], 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return quote(_PERCENT.sub(fix, text), safe=safe + "%")


def _plain_link(url: str) -> re.Match | None:
    plain = _PLAIN_LINK.match(url)
    return plain if plain and _kept_port(plain.group(1), plain.group(3)) else None


def _index_document(path: str) -> re.Match | None:
    """_INDEX_DOCUMENT.search(path): a match can only start at the last "/", so it is only tried there."""
    return _INDEX_DOCUMENT.match(path, path.rfind("/")) if "." in path else None


def link_aliases(url: str) -> list[str]:
    """Comparison forms of a link, main form first (see the module docstring). Empty for a link without host."""
    plain = _plain_link(url)  # such a link is canonical as it is (a case of _ALREADY_CANONICAL)
    canonical = url if plain else canonical_link(url)
    plain = plain or _plain_link(canonical)
    if plain:  # what the parsing below comes to for such a link
        host = plain.group(2).removeprefix("www.") + (f":{plain.group(3)}" if plain.group(3) else "")
        path, suffix = plain.group(4).rstrip("/"), ""
    else:
        try:
            parts, port, userinfo = _split(canonical)
        except ValueError:
            return []
        if not parts.netloc or not parts.hostname:
            return []
        scheme = parts.scheme.lower()
        host = _netloc(scheme, parts.hostname, port, "", keep_www=False)
        path = _normalise_escapes(parts.path, safe="/:@!$&'()*+,;=~")
        path = path.rstrip("/")
        params = sorted(p for p in parts.query.split("&") if p)
        query = "&".join(_normalise_escapes(p, safe="=:@!$'()*+,;/?~") for p in params)
        suffix = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    aliases = [host + path + suffix]
    index = _index_document(path)
    if index:
        aliases.append(host + path[: index.start()] + suffix)
    if host == "medium.com" or host.endswith(".medium.com"):
        post_id = _MEDIUM_POST_ID.search(path)
        if post_id:
            aliases.append(f"medium.com/p/{post_id.group(1)}")
        elif path.startswith("/p/"):
            aliases.append(f"medium.com{path}")
    return list(dict.fromkeys(aliases))


def hash_key(title: str, date: str, extra: str = "") -> str:
    """The key of an entry with neither id nor link: ``sha256:`` + hex of title and date (+ text if both empty)."""
    material = f"{title.strip()}\n{date.strip()}"
    if not title.strip() and not date.strip():
        material += "\n" + extra
    return "sha256:" + hashlib.sha256(material.encode("utf-8")).hexdigest()


def entry_key(identifier: str | None, link: str | None, title: str, date: str, extra: str = "") -> str:
    """guid/atom:id/JSON Feed id verbatim; else the canonical link; else `hash_key`."""
    if identifier and identifier.strip():
        return identifier.strip()
    if link:
        return link
    return hash_key(title, date, extra)


_SHARED_SUFFIX = re.compile(r"^(.*) \[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\]$", re.DOTALL)


def shared_key(key: str, published: datetime) -> str:
    """The key of one of several different posts given the same id: the id and the post's publication time."""
    return f"{key} [{published.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}]"


def other_key_forms(key: str, published: datetime | None) -> list[str]:
    """The keys the same post had or will have when the post that shared its id comes or goes."""
    shared = _SHARED_SUFFIX.match(key)
    if shared:
        return [shared.group(1)]
    return [shared_key(key, published)] if published else []


def _reading(entry) -> tuple:
    """What tells two posts apart: the title; for untitled posts (microblogs), the text. The same title with
    another text is the same article given twice (suspilne repeats one, the later copy without its summary)."""
    if entry.title:
        return (entry.title,)
    return ("", entry.summary_html.strip(), entry.content_html.strip())


def separate_shared_keys(entries: list) -> list:
    """The document's entries with verbatim repeats of a key dropped and different posts sharing a key given
    `shared_key`s (see the module docstring)."""
    groups: dict[str, list] = {}
    for entry in entries:
        groups.setdefault(entry.key, []).append(entry)
    if len(groups) == len(entries):
        return entries
    separate: set[int] = set()
    for group in groups.values():
        dates = {entry.published for entry in group}
        if len(group) > 1 and None not in dates and len(dates) == len(group) and len({_reading(e) for e in group}) > 1:
            separate.update(id(entry) for entry in group)
    kept: list = []
    seen: set[str] = set()
    for entry in entries:
        if id(entry) in separate:
            entry = replace(entry, key=shared_key(entry.key, entry.published))
        if entry.key not in seen:
            seen.add(entry.key)
            kept.append(entry)
    return kept
