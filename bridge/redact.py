"""The one redaction of secrets, for every text that came from a server or goes to a log, the state or the screen.

Servers sometimes echo what they were sent (a refused login quoting its request, a proxy page quoting the
Authorization header), so an error text may carry a credential. Two nets catch it:
- the secrets bridge knows: every credential resolved in this process (config.resolve_secret registers it),
  also in its URL-encoded and JSON-escaped spellings;
- generic shapes, for a secret this process never saw: Bearer/Basic credentials, `access_token=...`,
  `"password": "..."`, a URL's user:password@, JWTs (Bluesky session tokens), and the Bluesky app-password
  shape xxxx-xxxx-xxxx-xxxx, a Nostr nsec1... key, and a Threads TH... token (refreshed ones are new every day).

Alert destinations and the ping URL are credentials too (register_url_secrets: their passwords, tokens and
topics). Used before a server's text is stored (bridge/state/store.py), when stored text is shown (status, doctor, poll: rows
written by older versions were stored raw), and on every log record (bridge/logs.py).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MARKER = "[redacted]"
# Shorter values would blank out ordinary words; no real token or app password is this short.
MIN_SECRET_LENGTH = 4

_known: set[str] = set()
# _known, longest first (so that a secret containing another is replaced whole); a new tuple on each change, so a
# redaction in another thread goes on over the one it began with
_longest_first: tuple[str, ...] = ()

_SECRET_KEYS = (
    "access_token|refresh_token|id_token|client_secret|app_password|apppassword|password|passwd|secret|"
    "api_key|apikey|accessjwt|refreshjwt|token"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> (also Basic, DPoP), wherever it is quoted
    (re.compile(r"\b(Bearer|Basic|DPoP)(\s+)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE), rf"\1\2{MARKER}"),
    # access_token=..., password: ..., "refreshJwt": "..." -- the key stays, so the message still reads; not a
    # config key path (accounts.x.access_token: ...), and only a credential-long value, not the next word
    (re.compile(rf"""((?<![\w.])(?:{_SECRET_KEYS})\b\\?["']?\s*[:=]\s*\\?["']?)[^\s"'\\&,;<>{{}}]{{8,}}""", re.IGNORECASE),
     rf"\1{MARKER}"),
    # a password in a URL: https://user:password@host/
    (re.compile(r"(?<=://)([^/\s:@]+):[^/\s@]+@"), rf"\1:{MARKER}@"),
    # a JWT (header.payload.signature; the header is base64 of '{"')
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MARKER),
    # a Nostr secret key in its NIP-19 form (bech32: nsec1 and 58 characters)
    (re.compile(r"\bnsec1[02-9ac-hj-np-z]{58}\b"), MARKER),
    # a Threads (Meta) user access token: "TH" and a long base64url run (long-lived ones are ~180 characters)
    (re.compile(r"\bTH[A-Za-z0-9_-]{60,}"), MARKER),
    # a Bluesky app password (base32, 4x4); not inside a URL path or a longer slug, where it is a post's name
    (re.compile(r"(?<![\w/.@-])[a-z2-7]{4}(?:-[a-z2-7]{4}){3}(?![\w/.@-])"), MARKER),
)
# What the patterns above cannot match without: their keywords (in the same case-insensitive matching), or their
# fixed characters. A text holding none of them is left alone by every pattern, so the seven substitutions are
# skipped: most texts are ordinary log lines ("feed x: new, HTTP 200, baseline 20"), 10,000 in a cold poll.
_KEYWORDS = ("Bearer", "Basic", "DPoP", *_SECRET_KEYS.split("|"))
# The lookahead on the keywords' first letters lets the search pass over other characters quickly.
_MAY_MATCH_KEYWORD = re.compile(rf"(?=[{''.join(sorted({k[0].lower() for k in _KEYWORDS}))}])({'|'.join(_KEYWORDS)})",
                                re.IGNORECASE)
_MAY_MATCH_SHAPE = re.compile(r"://|eyJ|nsec1|TH|[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}")


def register_secret(value: str | None) -> None:
    """Remember a credential, so that no stored, shown or logged text can carry it."""
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    _known.add(value)
    _known.add(quote(value, safe=""))
    _known.add(json.dumps(value)[1:-1])
    global _longest_first
    _longest_first = tuple(sorted(_known, key=len, reverse=True))


# A path segment or query value this long may be an ntfy topic, a webhook token or a healthchecks.io UUID; a
# shorter one is a word such as "hooks" or "json" that must stay readable elsewhere.
MIN_URL_PART_LENGTH = 8


def register_url_secrets(url: str) -> None:
    """Remember the parts of an alert destination or ping URL that may be secrets on their own (a library may
    quote them without the rest of the URL): the password, long path segments, query values."""
    try:
        parts = urlsplit(url)
        register_secret(parts.password)
    except ValueError:  # a URL Python cannot split: the whole of it is registered by the caller
        return
    for segment in parts.path.split("/"):
        if len(segment) >= MIN_URL_PART_LENGTH:
            register_secret(unquote(segment))
            register_secret(segment)
    for _, value in parse_qsl(parts.query):
        if len(value) >= MIN_URL_PART_LENGTH:
            register_secret(value)


def redact(text: str | None) -> str | None:
    """`text` with every known secret and every credential-shaped string replaced by [redacted]."""
    if not text:
        return text
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, MARKER)
    if _MAY_MATCH_SHAPE.search(text) is None and _MAY_MATCH_KEYWORD.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def register_config_secrets(config) -> None:
    """Learn every credential the config points to (best effort): `status` and `doctor` show rows that an
    older version stored without redaction, and must recognise the secrets in them."""
    from bridge.config import resolve_secret
    from bridge.errors import ConfigError

    for account in config.accounts:
        try:
            resolve_secret(config, account)  # registers it
        except ConfigError:
            continue  # no credential to find, so none to hide
    from bridge.alerts.destinations import alert_urls

    alert_urls(config, on_error=lambda exc: None)  # registers the alert destinations and the ping URL
