"""Takahē's JSON entities, for the fake's takahe profile (MastodonFake(profile="takahe")).

The fake builds Mastodon 4.7.3's entities; a server of the takahe profile answers with Takahē 0.11's instead:
the fields of jointakahe/takahe api/schemas.py (Account, Status, MediaAttachment) and the documents of
api/views/instance.py. Checked against a real Takahē by tests/test_takahe_profile_conformance.py.
"""

from __future__ import annotations

ACCOUNT_FIELDS = (
    "id", "username", "acct", "url", "display_name", "note", "avatar", "avatar_static", "header", "header_static",
    "locked", "fields", "emojis", "bot", "group", "discoverable", "moved", "suspended", "limited", "created_at",
    "last_status_at", "statuses_count", "followers_count", "following_count", "source",
)
STATUS_FIELDS = (
    "id", "uri", "created_at", "account", "content", "visibility", "sensitive", "spoiler_text", "media_attachments",
    "mentions", "tags", "emojis", "reblogs_count", "favourites_count", "replies_count", "url", "in_reply_to_id",
    "in_reply_to_account_id", "reblog", "poll", "card", "language", "text", "edited_at", "favourited", "reblogged",
    "muted", "bookmarked", "pinned",
)
MEDIA_FIELDS = ("id", "type", "url", "preview_url", "remote_url", "meta", "description", "blurhash")
IMAGE_TYPES = ["image/apng", "image/avif", "image/gif", "image/jpeg", "image/png", "image/webp"]
POLLS = {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300, "max_expiration": 2629746}


def account(data: dict, credentials: bool) -> dict:
    out = {key: data.get(key) for key in ACCOUNT_FIELDS}
    # Schema defaults Takahē fills in (discoverable is the identity's setting, on by default)
    out.update(discoverable=True, moved=None, suspended=False, limited=False, last_status_at=None)
    source = data.get("source") or {}
    out["source"] = {
        "note": source.get("note", ""), "fields": [], "privacy": source.get("privacy", "public"),
        "sensitive": False, "language": "unk", "follow_requests_count": 0,
    } if credentials else None
    return out


def status(data: dict, html: str) -> dict:
    out = {key: data.get(key) for key in STATUS_FIELDS}
    # Takahē never builds cards nor keeps a language; "text" carries the rendered content
    out.update(content=html, text=html, card=None, language=None)
    for flag in ("favourited", "reblogged", "muted", "bookmarked", "pinned"):
        out[flag] = bool(out[flag])
    return out


def media(data: dict) -> dict:
    out = {key: data.get(key) for key in MEDIA_FIELDS}
    meta = data.get("meta") or {}
    out["meta"] = {"focus": meta.get("focus") or {"x": 0, "y": 0},
                   **({"original": meta["original"]} if "original" in meta else {})}
    return out


def instance_v1(base: dict, *, stats: dict) -> dict:
    """Takahē's v1 document; the limits are the fake's (base["configuration"]["statuses"])."""
    return {
        "uri": base["uri"], "title": base["title"], "short_description": "", "description": "", "email": "",
        "version": base["version"], "urls": {}, "stats": stats, "thumbnail": "/static/img/fjords-banner-600.jpg",
        "languages": ["en"], "registrations": True, "approval_required": False, "invites_enabled": False,
        "configuration": {
            "accounts": {},
            "statuses": dict(base["configuration"]["statuses"]),
            "media_attachments": {"supported_mime_types": list(IMAGE_TYPES), "image_size_limit": 10 * 1024**2,
                                  "image_matrix_limit": 2000 * 2000},
            "polls": dict(POLLS),
        },
        "contact_account": None,
        "rules": [],
    }


def instance_v2(base: dict, *, users: int, admin: dict | None) -> dict:
    return {
        "domain": base["domain"], "title": base["title"], "version": base["version"],
        "source_url": "https://github.com/jointakahe/takahe", "description": "", "email": "", "urls": {},
        "usage": {"users": {"active_month": users}},
        "thumbnail": {"url": "/static/img/fjords-banner-600.jpg"},
        "languages": ["en"],
        "configuration": {
            "urls": {},
            "accounts": {"max_featured_tags": 0},
            "statuses": dict(base["configuration"]["statuses"]),
            "media_attachments": {"supported_mime_types": list(IMAGE_TYPES), "image_size_limit": 10 * 1024**2,
                                  "image_matrix_limit": 2000 * 2000, "video_size_limit": 0,
                                  "video_frame_rate_limit": 60, "video_matrix_limit": 2000 * 2000},
            "polls": dict(POLLS),
            "translation": {"enabled": False},
        },
        "registrations": {"enabled": True, "approval_required": False, "message": None},
        "contact": {"email": "", "account": admin},
        "rules": [],
    }

