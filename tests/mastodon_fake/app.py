"""The fake Mastodon server's state and endpoint logic (no sockets here; see server.py).

Behaviour follows Mastodon 4.x for the endpoints bridge uses; JSON shapes follow the
recordings of a Mastodon 4.7.3 server shipped in the Mastodon.py 2.3.3 sdist (checked by
tests/test_mastodon_conformance.py).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import io
import mimetypes
import queue
import re
import secrets
import threading
import urllib.parse
from typing import Any

from . import cards, takahe_entities
from .length import find_entities, profile_length
from .profiles import FakeProfile, profile_named
from .ratelimit import Hit, RateLimits
from .util import (
    Clock,
    IdGenerator,
    Params,
    cast_bool,
    iso_date,
    iso_ms,
    midnight_iso,
    text_to_html,
)

OOB = "urn:ietf:wg:oauth:2.0:oob"

SCOPES_SUPPORTED = [
    "read", "profile", "write", "write:accounts", "write:blocks", "write:bookmarks", "write:collections",
    "write:conversations", "write:favourites", "write:filters", "write:follows", "write:lists",
    "write:media", "write:mutes", "write:notifications", "write:reports", "write:statuses",
    "read:accounts", "read:blocks", "read:bookmarks", "read:collections", "read:favourites",
    "read:filters", "read:follows", "read:lists", "read:mutes", "read:notifications", "read:search",
    "read:statuses", "follow", "push", "admin:read", "admin:read:accounts", "admin:read:reports",
    "admin:read:domain_allows", "admin:read:domain_blocks", "admin:read:ip_blocks",
    "admin:read:email_domain_blocks", "admin:read:canonical_email_blocks", "admin:write",
    "admin:write:accounts", "admin:write:reports", "admin:write:domain_allows",
    "admin:write:domain_blocks", "admin:write:ip_blocks", "admin:write:email_domain_blocks",
    "admin:write:canonical_email_blocks",
]
_FOLLOW_SCOPES = {"read:blocks", "write:blocks", "read:follows", "write:follows", "read:mutes", "write:mutes"}

SUPPORTED_MIME_TYPES = [
    "image/jpeg", "image/png", "image/gif", "image/heic", "image/heif", "image/webp", "image/avif",
    "video/webm", "video/mp4", "video/quicktime", "video/ogg", "audio/wave", "audio/wav", "audio/x-wav",
    "audio/x-pn-wave", "audio/vnd.wave", "audio/ogg", "audio/vorbis", "audio/mpeg", "audio/mp3",
    "audio/webm", "audio/flac", "audio/aac", "audio/m4a", "audio/x-m4a", "audio/mp4", "audio/3gpp",
    "video/x-ms-asf",
]
VISIBILITIES = ("public", "unlisted", "private", "direct")
FALLBACK_DESCRIPTION_LIMIT = 1500
# app/controllers/api/v1/statuses_controller.rb: CONTEXT_LIMIT, and DESCENDANTS_LIMIT for anonymous requests
CONTEXT_LIMIT = 4_096
ANONYMOUS_DESCENDANTS_LIMIT = 60

# ISO 639-1 codes plus the few ISO 639-3 / regional codes Mastodon accepts for posts.
LANGUAGES = set(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de "
    "dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id "
    "ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu "
    "lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu "
    "rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr "
    "ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu ast chr ckb cnr csb gsw jbo kab kmr ldn "
    "lfn moh nds pdc sco sma smj szl tok vai xal zba zgh zh-CN zh-HK zh-TW zh-YUE".split()
)
_BLURHASH = "UFHV6nWB2yk8pyo0adR*.7kCMdnj~qofM{R*"


ATTRIBUTION_DOMAINS_LIMIT = 100  # Account::AttributionDomains::ATTRIBUTION_DOMAINS_LIMIT
# DomainValidator: dot-separated labels of letters, digits and hyphens (IDN in Unicode too), at most 253 characters
_DOMAIN_NAME = re.compile(r"(?=.{1,253}$)[\w](?:[\w-]{0,61}[\w])?(?:\.[\w](?:[\w-]{0,61}[\w])?)*")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def not_found() -> ApiError:
    return ApiError(404, "Record not found")


def unprocessable(message: str) -> ApiError:
    return ApiError(422, message)


@dataclasses.dataclass
class Response:
    status: int
    body: Any = None  # JSON-able object, bytes or str
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    cache_control: str = "private, no-store"


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lowercase names
    body: bytes
    client_ip: str = "127.0.0.1"
    params: Params | None = None
    token: "Token | None" = None
    token_state: str = "missing"  # missing | valid | invalid | revoked
    route: str | None = None
    path_args: tuple[str, ...] = ()


@dataclasses.dataclass
class App:
    id: str
    name: str
    website: str | None
    scopes: list[str]
    redirect_uris: list[str]
    client_id: str
    client_secret: str


@dataclasses.dataclass
class Account:
    id: str
    username: str
    created_at: float
    display_name: str = ""
    note: str = ""
    locked: bool = False
    bot: bool = False
    language: str = "en"  # default posting language
    default_visibility: str = "public"
    sensitive: bool = False  # media sensitive by default (source.sensitive)
    # Sites whose pages may name this account as their writer (fediverse:creator), Mastodon 4.4+
    attribution_domains: list[str] = dataclasses.field(default_factory=list)
    noindex: bool = False  # "exclude my posts from search": clients that index must leave them out
    avatar: str | None = None  # an avatar URL of its own; None: the server's "missing" picture


@dataclasses.dataclass
class Token:
    token: str
    account_id: str | None
    scopes: set[str]
    app_id: str | None
    created_at: float
    revoked: bool = False

    def allows(self, *needed: str) -> bool:
        for scope in needed:
            if scope in self.scopes:
                return True
            top = scope.split(":")[0]
            if ":" in scope and top in ("read", "write") and top in self.scopes:
                return True
            if scope.startswith("admin:") and scope.count(":") == 2 and scope.rsplit(":", 1)[0] in self.scopes:
                return True
            if scope in _FOLLOW_SCOPES and "follow" in self.scopes:
                return True
        return False


@dataclasses.dataclass
class Media:
    id: str
    account_id: str
    type: str  # image | gifv | video | audio
    mime: str
    ext: str
    data: bytes
    description: str | None
    focus: tuple[float, float] | None
    created_at: float
    width: int = 0
    height: int = 0
    processed: bool = True
    polls: int = 0
    status_id: str | None = None
    file_key: str = ""


@dataclasses.dataclass
class Status:
    id: str
    account_id: str
    text: str
    spoiler_text: str
    sensitive: bool
    visibility: str
    language: str | None
    media_ids: list[str]
    created_at: float
    application: dict | None
    in_reply_to_id: str | None = None
    in_reply_to_account_id: str | None = None
    edited_at: float | None = None
    card: dict | None = None
    deleted: bool = False
    html: str = ""
    mentions: list[dict] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    history: list[dict] = dataclasses.field(default_factory=list)
    card_generation: int = 0
    favourited_by: list[str] = dataclasses.field(default_factory=list)  # account ids
    # account id -> (the boost's own id, when, its visibility)
    reblogs: dict[str, tuple[str, float, str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Grant:
    code: str
    app_id: str
    account_id: str
    scopes: list[str]
    redirect_uri: str
    created_at: float
    used: bool = False


def _split_scopes(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return [s for s in re.split(r"[\s+]+", str(value)) if s]


class MastodonState:
    """All server state and behaviour. Thread-safe through one re-entrant lock."""

    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1",
        max_characters: int = 500,
        characters_reserved_per_url: int | None = None,
        max_media_attachments: int = 4,
        description_limit: int | None = 10000,
        version: str | None = None,
        title: str = "Mastodon",
        clock: Clock | None = None,
        idempotency_ttl: float | None = None,
        media_processing_polls: int | None = 1,
        media_processing_seconds: float | None = None,
        card_hosts: dict[str, str] | None = None,
        card_fetch: bool = True,
        rate_limits: dict[str, tuple[int, int]] | None = None,
        unicode_query_urls: bool = True,
        oauth_code_ttl: float = 600.0,
        cw_implies_sensitive: bool | None = None,
        profile: str = "mastodon",
    ):
        # which server the fake answers like (profiles.py); version, URL weight and the
        # Idempotency-Key window default to that server's
        self.profile: FakeProfile = profile_named(profile)
        if characters_reserved_per_url is None:
            characters_reserved_per_url = self.profile.characters_reserved_per_url
        if version is None:
            version = self.profile.version
        if idempotency_ttl is None:
            idempotency_ttl = self.profile.idempotency_ttl
        if cw_implies_sensitive is None:
            cw_implies_sensitive = self.profile.cw_implies_sensitive
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self.ids = IdGenerator(self.clock)
        self.base_url = base_url.rstrip("/")
        self.config: dict[str, Any] = {
            "max_characters": max_characters,
            "characters_reserved_per_url": characters_reserved_per_url,
            "max_media_attachments": max_media_attachments,
            "description_limit": description_limit,
            "version": version,
            "title": title,
            "idempotency_ttl": idempotency_ttl,
            "media_processing_polls": media_processing_polls,
            "media_processing_seconds": media_processing_seconds,
            "unicode_query_urls": unicode_query_urls,
            "oauth_code_ttl": oauth_code_ttl,
            "cw_implies_sensitive": cw_implies_sensitive,
        }
        self.rate = RateLimits(rate_limits)
        self.card_hosts: dict[str, str] = dict(card_hosts or {})
        self.card_fetch_enabled = card_fetch
        self.apps: dict[str, App] = {}
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, Token] = {}
        self.media: dict[str, Media] = {}
        self.statuses: dict[str, Status] = {}
        self.grants: dict[str, Grant] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, float]] = {}
        self.idempotent_refusals: dict[tuple[str, str], tuple[ApiError, float]] = {}
        self.files: dict[str, tuple[str, bytes]] = {}  # path -> (mime, bytes)
        self.oauth_auto_approve: str | None = None  # username that "clicks Authorize"
        self.default_app = self._new_app("MastodonFake", None, ["read", "write", "follow", "push", "profile"], [OOB])
        self._card_queue: "queue.Queue[tuple[str, int] | None]" = queue.Queue()
        self._card_pending = 0
        self._card_cond = threading.Condition()
        self._card_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ configuration
    def set_config(self, **values: Any) -> None:
        with self.lock:
            for key, value in values.items():
                if key not in self.config:
                    raise KeyError(f"unknown setting {key!r}; known: {sorted(self.config)}")
                self.config[key] = value

    def max_characters(self) -> int:
        return int(self.config["max_characters"])

    def description_limit(self) -> int:
        value = self.config["description_limit"]
        return FALLBACK_DESCRIPTION_LIMIT if value is None else int(value)

    # ------------------------------------------------------------------ accounts, apps, tokens
    def _new_app(self, name: str, website: str | None, scopes: list[str], redirect_uris: list[str]) -> App:
        app = App(
            id=str(len(self.apps) + 1),
            name=name,
            website=website,
            scopes=scopes,
            redirect_uris=redirect_uris,
            client_id=secrets.token_urlsafe(32)[:43],
            client_secret=secrets.token_urlsafe(32)[:43],
        )
        self.apps[app.client_id] = app
        return app

    def add_account(
        self,
        username: str,
        scopes: list[str] | str | None = None,
        *,
        display_name: str = "",
        language: str = "en",
        token: str | None = None,
        noindex: bool = False,
        avatar: str | None = None,
    ) -> str:
        """Create a local account (if new) and return a fresh access token for it."""
        with self.lock:
            account = self.account_by_username(username)
            if account is None:
                if not re.fullmatch(r"[A-Za-z0-9_]+([.-]+[A-Za-z0-9_]+)*", username):
                    raise ValueError(f"invalid username {username!r}")
                account = Account(
                    id=self.ids.next(),
                    username=username,
                    created_at=self.clock.now(),
                    display_name=display_name,
                    language=language,
                    noindex=noindex,
                    avatar=avatar,
                )
                self.accounts[account.id] = account
            return self.issue_token(account.id, _split_scopes(scopes) or ["read", "write", "follow", "push", "profile"], token=token)

    def issue_token(self, account_id: str | None, scopes: list[str], app_id: str | None = None, token: str | None = None) -> str:
        with self.lock:
            value = token or secrets.token_urlsafe(32)[:43]
            self.tokens[value] = Token(value, account_id, set(scopes), app_id or self.default_app.client_id, self.clock.now())
            return value

    def revoke(self, token: str) -> None:
        with self.lock:
            if token not in self.tokens:
                raise KeyError("unknown token")
            self.tokens[token].revoked = True

    def account_by_username(self, username: str) -> Account | None:
        for account in self.accounts.values():
            if account.username.lower() == username.lower():
                return account
        return None

    def account_of(self, name_or_id: str) -> Account:
        account = self.accounts.get(name_or_id) or self.account_by_username(name_or_id.lstrip("@"))
        if account is None:
            raise KeyError(f"no account {name_or_id!r}")
        return account

    # ------------------------------------------------------------------ serializers
    def account_url(self, account: Account) -> str:
        return f"{self.base_url}/@{account.username}"

    def account_json(self, account: Account, credentials: bool = False) -> dict:
        own = [s for s in self.statuses.values() if s.account_id == account.id and not s.deleted]
        last = max((s.created_at for s in own), default=None)
        data: dict[str, Any] = {
            "id": account.id,
            "username": account.username,
            "acct": account.username,
            "display_name": account.display_name,
            "locked": account.locked,
            "bot": account.bot,
            "discoverable": None,
            "indexable": False,
            "group": False,
            "created_at": midnight_iso(account.created_at),
            "note": f"<p>{html.escape(account.note)}</p>" if account.note else "",
            "url": self.account_url(account),
            "uri": f"{self.base_url}/ap/users/{account.id}",
            "avatar": account.avatar or f"{self.base_url}/avatars/original/missing.png",
            "avatar_static": account.avatar or f"{self.base_url}/avatars/original/missing.png",
            "avatar_description": "",
            "header": f"{self.base_url}/headers/original/missing.png",
            "header_static": f"{self.base_url}/headers/original/missing.png",
            "header_description": "",
            "followers_count": 0,
            "following_count": 0,
            "statuses_count": len(own),
            "last_status_at": iso_date(last) if last is not None else None,
            "hide_collections": None,
            "show_media": True,
            "show_media_replies": True,
            "show_featured": True,
            "noindex": account.noindex,
            "feature_approval": {"automatic": [], "manual": [], "current_user": "denied"},
        }
        if credentials:
            data["source"] = {
                "privacy": account.default_visibility,
                "sensitive": account.sensitive,
                "language": None,
                "note": account.note,
                "fields": [],
                "follow_requests_count": 0,
                "hide_collections": None,
                "discoverable": None,
                "indexable": False,
                "attribution_domains": list(account.attribution_domains),
                "quote_policy": "public",
            }
        data["emojis"] = []
        data["roles"] = []
        data["fields"] = []
        if credentials:
            data["role"] = {
                "id": "-99",
                "name": "",
                "permissions": "65536",
                "color": "",
                "highlighted": False,
                "collection_limit": 10,
            }
        if self.profile.entities == "takahe":
            return takahe_entities.account(data, credentials)
        return data

    def media_json(self, media: Media) -> dict:
        key = media.file_key
        if media.type == "image":
            original = {"width": media.width, "height": media.height, "size": f"{media.width}x{media.height}",
                        "aspect": (media.width / media.height) if media.height else 1.0}
            sw, sh = _fit(media.width, media.height, 480)
            meta: dict[str, Any] = {
                "original": original,
                "small": {"width": sw, "height": sh, "size": f"{sw}x{sh}", "aspect": (sw / sh) if sh else 1.0},
            }
        elif media.type == "audio":
            meta = {"original": {"duration": 1.0, "bitrate": 128000}}
        else:
            meta = {
                "original": {"width": 640, "height": 360, "frame_rate": "30/1", "duration": 1.0, "bitrate": 1000000},
                "small": {"width": 640, "height": 360, "size": "640x360", "aspect": 640 / 360},
            }
        if media.focus is not None:
            meta["focus"] = {"x": float(media.focus[0]), "y": float(media.focus[1])}
        if media.type in ("video", "gifv") and media.processed:
            meta["colors"] = {"background": "#000000", "foreground": "#ffffff", "accent": "#888888"}
        files = f"{self.base_url}/system/media_attachments/files/{key}"
        preview_ext = media.ext if media.type == "image" else "png"
        data = {
            "id": media.id,
            "type": media.type,
            "url": f"{files}/original/{media.id}.{media.ext}" if media.processed else None,
            "preview_url": None if media.type == "audio" else f"{files}/small/{media.id}.{preview_ext}",
            "remote_url": None,
            "preview_remote_url": None,
            "text_url": None,
            "meta": meta,
            "description": media.description,
            "blurhash": None if media.type == "audio" else _BLURHASH,
        }
        if self.profile.entities == "takahe":
            return takahe_entities.media(data)
        return data

    def card_json(self, card: dict | None) -> dict | None:
        if card is None:
            return None
        out = {k: v for k, v in card.items() if not k.startswith("_")}
        out.setdefault("blurhash", None)
        out.setdefault("image", None)
        author = out.get("author_name") or ""
        out["missing_attribution"] = False
        out["authors"] = [{"name": author, "url": out.get("author_url") or "", "account": None}] if author else []
        ordered = {}
        for key in ("url", "title", "description", "language", "type", "author_name", "author_url",
                    "provider_name", "provider_url", "html", "width", "height", "image", "image_description",
                    "embed_url", "blurhash", "published_at", "missing_attribution", "authors"):
            ordered[key] = out.get(key)
        return ordered

    def status_json(self, status: Status, viewer: Account | None, source: bool = False) -> dict:
        account = self.accounts[status.account_id]
        own = viewer is not None and viewer.id == account.id
        data: dict[str, Any] = {
            "id": status.id,
            "created_at": iso_ms(status.created_at),
            "in_reply_to_id": status.in_reply_to_id,
            "in_reply_to_account_id": status.in_reply_to_account_id,
            "sensitive": status.sensitive,
            "spoiler_text": status.spoiler_text,
            "visibility": status.visibility,
            "language": status.language,
            "uri": f"{self.base_url}/ap/users/{account.id}/statuses/{status.id}",
            "url": f"{self.account_url(account)}/{status.id}",
            "replies_count": sum(1 for s in self.statuses.values() if s.in_reply_to_id == status.id and not s.deleted),
            "reblogs_count": len(status.reblogs),
            "favourites_count": len(status.favourited_by),
            "quotes_count": 0,
            "edited_at": iso_ms(status.edited_at) if status.edited_at is not None else None,
        }
        if viewer is not None:
            data.update({"favourited": viewer.id in status.favourited_by, "reblogged": viewer.id in status.reblogs,
                         "muted": False, "bookmarked": False})
            if own and status.visibility != "direct":
                data["pinned"] = False
        if source:
            data["text"] = status.text
        else:
            data["content"] = status.html
        if viewer is not None:
            data["filtered"] = []
        data["reblog"] = None
        data["application"] = status.application
        data["account"] = self.account_json(account)
        data["media_attachments"] = [self.media_json(self.media[m]) for m in status.media_ids if m in self.media]
        data["mentions"] = [
            {"id": m["id"], "username": m["username"], "url": m["url"], "acct": m["acct"]} for m in status.mentions
        ]
        data["tags"] = [{"name": t.lower(), "url": f"{self.base_url}/tags/{t.lower()}"} for t in status.tags]
        data["emojis"] = []
        data["tagged_collections"] = []
        data["quote"] = None
        data["card"] = self.card_json(status.card)
        data["poll"] = None
        quotable = status.visibility in ("public", "unlisted")
        data["quote_approval"] = {
            "automatic": ["public"] if quotable else [],
            "manual": [],
            "current_user": "automatic" if (own and quotable) or (viewer and quotable) else "denied",
        }
        if self.profile.entities == "takahe":
            return takahe_entities.status(data, status.html)
        return data

    def instance_v2_json(self) -> dict:
        host = urllib.parse.urlsplit(self.base_url).netloc
        config: dict[str, Any] = {
            "urls": {
                "streaming": self.base_url.replace("http", "ws", 1),
                "status": None,
                "about": f"{self.base_url}/about",
                "privacy_policy": f"{self.base_url}/privacy-policy",
                "terms_of_service": None,
            },
            "vapid": {"public_key": "BFakeVapidKeyForTestsOnly0000000000000000000000000000000000000000000000000000000000000000="},
            "accounts": {
                "max_display_name_length": 30,
                "max_note_length": 500,
                "max_avatar_description_length": 150,
                "max_header_description_length": 150,
                "max_featured_tags": 10,
                "max_pinned_statuses": 5,
                "max_profile_fields": 4,
                "profile_field_name_limit": 255,
                "profile_field_value_limit": 255,
            },
            "statuses": {
                "max_characters": self.max_characters(),
                "max_media_attachments": int(self.config["max_media_attachments"]),
                "characters_reserved_per_url": int(self.config["characters_reserved_per_url"]),
            },
            "media_attachments": {
                "description_limit": self.config["description_limit"],
                "image_matrix_limit": 33177600,
                "image_size_limit": 16777216,
                "supported_mime_types": list(SUPPORTED_MIME_TYPES),
                "video_frame_rate_limit": 120,
                "video_matrix_limit": 8294400,
                "video_size_limit": 103809024,
            },
            "polls": {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300, "max_expiration": 2629746},
            "translation": {"enabled": False},
            "timelines_access": {
                "live_feeds": {"local": "public", "remote": "public"},
                "hashtag_feeds": {"local": "public", "remote": "public"},
                "trending_link_feeds": {"local": "public", "remote": "public"},
            },
            "limited_federation": False,
        }
        if self.config["description_limit"] is None:
            del config["media_attachments"]["description_limit"]
        data = {
            "domain": host,
            "title": self.config["title"],
            "version": self.config["version"],
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "",
            "usage": {"users": {"active_month": len(self.accounts)}},
            "thumbnail": {"url": f"{self.base_url}/packs/images/preview.png", "description": "A fake Mastodon server for tests."},
            "icon": [{"src": f"{self.base_url}/packs/icons/android-chrome-{n}x{n}.png", "size": f"{n}x{n}"} for n in (36, 48, 72, 96, 144, 192, 256, 384, 512)],
            "languages": ["en"],
            "configuration": config,
            "registrations": {"enabled": False, "approval_required": False, "reason_required": False, "message": None, "min_age": None, "url": None},
            "api_versions": {"mastodon": 11},
            "wrapstodon": None,
            "contact": {"email": "", "account": None},
            "rules": [],
        }
        if self.profile.entities == "takahe":
            first = min(self.accounts.values(), key=lambda a: int(a.id), default=None)  # the admin, made first
            return takahe_entities.instance_v2(data, users=len(self.accounts),
                                               admin=self.account_json(first) if first else None)
        return data

    def instance_v1_json(self) -> dict:
        host = urllib.parse.urlsplit(self.base_url).netloc
        data = {
            "uri": host,
            "title": self.config["title"],
            "short_description": "",
            "description": "",
            "email": "",
            "version": self.config["version"],
            "urls": {"streaming_api": self.base_url.replace("http", "ws", 1)},
            "stats": {
                "user_count": len(self.accounts),
                "status_count": sum(1 for s in self.statuses.values() if not s.deleted),
                "domain_count": 0,
            },
            "thumbnail": f"{self.base_url}/packs/images/preview.png",
            "languages": ["en"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "configuration": {
                "accounts": {"max_featured_tags": 10},
                "statuses": {
                    "max_characters": self.max_characters(),
                    "max_media_attachments": int(self.config["max_media_attachments"]),
                    "characters_reserved_per_url": int(self.config["characters_reserved_per_url"]),
                },
                "media_attachments": {
                    "supported_mime_types": list(SUPPORTED_MIME_TYPES),
                    "image_size_limit": 16777216,
                    "image_matrix_limit": 33177600,
                    "video_size_limit": 103809024,
                    "video_frame_rate_limit": 120,
                    "video_matrix_limit": 8294400,
                },
                "polls": {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300, "max_expiration": 2629746},
            },
            "contact_account": None,
            "rules": [],
        }
        if self.profile.entities == "takahe":
            data = takahe_entities.instance_v1(data, stats=data["stats"])
        if self.profile.v1_max_toot_chars:  # Pleroma's InstanceView: the limit at the top, no configuration
            del data["configuration"]
            data["max_toot_chars"] = self.max_characters()
        return data

    def oauth_metadata_json(self) -> dict:
        b = self.base_url
        return {
            "issuer": f"{b}/",
            "authorization_endpoint": f"{b}/oauth/authorize",
            "token_endpoint": f"{b}/oauth/token",
            "revocation_endpoint": f"{b}/oauth/revoke",
            "userinfo_endpoint": f"{b}/oauth/userinfo",
            "scopes_supported": list(SCOPES_SUPPORTED),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "service_documentation": "https://docs.joinmastodon.org/",
            "app_registration_endpoint": f"{b}/api/v1/apps",
        }

    # ------------------------------------------------------------------ auth helpers
    def viewer(self, req: Request) -> Account | None:
        if req.token is not None and req.token_state == "valid" and req.token.account_id:
            return self.accounts.get(req.token.account_id)
        return None

    def require_token(self, req: Request, *scopes: str) -> Token:
        """doorkeeper_authorize!: 401 without a usable token, 403 without the scope."""
        if req.token_state == "revoked":
            raise ApiError(401, "The access token was revoked", _www_authenticate("The access token was revoked"))
        if req.token_state == "expired":
            raise ApiError(401, "The access token expired", _www_authenticate("The access token expired"))
        if req.token is None or req.token_state != "valid":
            raise ApiError(401, "The access token is invalid", _www_authenticate("The access token is invalid"))
        if scopes and not req.token.allows(*scopes):
            raise ApiError(403, self.profile.forbidden_message.format(scopes=" | ".join(scopes)))
        return req.token

    def require_user(self, req: Request, *scopes: str) -> Account:
        token = self.require_token(req, *scopes)
        account = self.accounts.get(token.account_id or "")
        if account is None:
            raise ApiError(422, "This method requires an authenticated user")
        return account

    def authorize_if_got_token(self, req: Request, *scopes: str) -> None:
        if req.token_state != "missing":
            self.require_token(req, *scopes)

    # ------------------------------------------------------------------ statuses
    def _visible(self, status: Status, viewer: Account | None) -> bool:
        if status.deleted:
            return False
        if viewer is not None and viewer.id == status.account_id:
            return True
        if status.visibility in ("public", "unlisted"):
            return True
        if status.visibility in ("direct", "private") and viewer is not None:
            # Mentioned accounts see both (followers see private ones too: the fake has no follows).
            return any(m["id"] == viewer.id for m in status.mentions)
        return False

    def context(self, status_id: str, viewer: Account | None) -> tuple[list[Status], list[Status]]:
        """Mastodon's ContextController: the ancestors (oldest first) and the descendants in depth-first order,
        each list only what the viewer may see; without a token at most 60 descendants, with one 4,096."""
        status = self.get_status(status_id, viewer)
        ancestors, parent = [], self.statuses.get(status.in_reply_to_id or "")
        while parent is not None and self._visible(parent, viewer) and len(ancestors) < CONTEXT_LIMIT:
            ancestors.append(parent)
            parent = self.statuses.get(parent.in_reply_to_id or "")
        limit = CONTEXT_LIMIT if viewer is not None else ANONYMOUS_DESCENDANTS_LIMIT
        children: dict[str, list[Status]] = {}
        for candidate in sorted(self.statuses.values(), key=lambda s: int(s.id)):
            if candidate.in_reply_to_id:
                children.setdefault(candidate.in_reply_to_id, []).append(candidate)
        descendants, stack = [], list(reversed(children.get(status.id, [])))
        while stack and len(descendants) < limit:
            candidate = stack.pop()
            if candidate.deleted:
                continue  # the tree's walk goes through existing statuses only
            # Status#descendants walks the whole reply tree and filters each status on its own: a public answer
            # to a followers-only reply is listed, its parent is not.
            stack.extend(reversed(children.get(candidate.id, [])))
            if self._visible(candidate, viewer):
                descendants.append(candidate)
        return list(reversed(ancestors)), descendants

    def favourite(self, account: Account, status_id: str, on: bool) -> Status:
        status = self.get_status(status_id, account)
        if on and account.id not in status.favourited_by:
            status.favourited_by.append(account.id)
        elif not on and account.id in status.favourited_by:
            status.favourited_by.remove(account.id)
        return status

    def reblog(self, account: Account, status_id: str, visibility: Any = None) -> Status:
        """ReblogService: anyone may boost a public or unlisted status, its author a private one too; a boost of
        a private status is private, of another the visibility asked for (else the account's default)."""
        status = self.get_status(status_id, account)
        if status.visibility == "direct" or (status.visibility == "private" and status.account_id != account.id):
            raise unprocessable("Validation failed: Reblog of status is not permitted")
        if status.visibility == "private":
            visibility = "private"
        elif visibility not in ("public", "unlisted", "private"):
            visibility = account.default_visibility
        status.reblogs.setdefault(account.id, (self.ids.next(), self.clock.now(), visibility))
        return status

    def boosted_by_reblog_id(self, account: Account, reblog_id: str) -> Status | None:
        """The status that `account` boosted with the boost `reblog_id`, if that is one of its boosts."""
        for status in self.statuses.values():
            boost = status.reblogs.get(account.id)
            if boost is not None and boost[0] == reblog_id:
                return status
        return None

    def unreblog(self, account: Account, status_id: str) -> Status:
        status = self.get_status(status_id, account)
        status.reblogs.pop(account.id, None)
        return status

    def reblog_json(self, status: Status, account: Account, source: bool = False) -> dict:
        """The boost itself, as POST /api/v1/statuses/:id/reblog answers (and DELETE, with source: "text"
        instead of "content"): a status of its own wrapping the original."""
        reblog_id, created_at, visibility = status.reblogs[account.id]
        data = self.status_json(status, account)
        wrapper = {key: data[key] for key in data if key not in ("pinned",)}
        wrapper.update({
            "id": reblog_id, "created_at": iso_ms(created_at), "in_reply_to_id": None, "in_reply_to_account_id": None,
            "sensitive": False, "spoiler_text": "", "language": None, "visibility": visibility,
            "uri": f"{self.base_url}/ap/users/{account.id}/statuses/{reblog_id}/activity",
            "url": f"{self.base_url}/users/{account.username}/statuses/{reblog_id}/activity",
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "quotes_count": 0, "edited_at": None,
            "favourited": False, "reblogged": True, "content": "", "reblog": data, "application": None,
            "account": self.account_json(account), "media_attachments": [], "mentions": [], "tags": [], "card": None,
        })
        if source:
            wrapper = {("text" if key == "content" else key): value for key, value in wrapper.items()}
        return wrapper

    def get_status(self, status_id: str, viewer: Account | None) -> Status:
        status = self.statuses.get(status_id)
        if status is None or not self._visible(status, viewer):
            raise not_found()
        return status

    def _resolve_mention(self, value: str) -> dict | None:
        username, _, domain = value.partition("@")
        if domain and domain.lower() != urllib.parse.urlsplit(self.base_url).netloc.lower():
            return None
        account = self.account_by_username(username)
        if account is None:
            return None
        return {"id": account.id, "username": account.username, "url": self.account_url(account), "acct": account.username}

    def _check_media_for_status(self, account: Account, media_ids: list[str], status_id: str | None) -> list[str]:
        limit = int(self.config["max_media_attachments"])
        ids = [str(m) for m in media_ids if str(m) != ""]
        if len(ids) > limit:
            raise unprocessable(f"Cannot attach more than {limit} files")
        found = []
        missing = []
        for media_id in ids:
            media = self.media.get(media_id)
            if media is None or media.account_id != account.id or media.status_id not in (None, status_id):
                missing.append(media_id)
            else:
                found.append(media)
        if missing:
            raise unprocessable(f"Media ({', '.join(missing)}) not found or already attached to another post")
        if len(found) > 1 and any(m.type in ("video", "gifv", "audio") for m in found):
            raise unprocessable("Cannot attach a video to a post that already contains images")
        for media in found:
            self._advance_processing(media, poll=False)
        if any(not m.processed for m in found):
            raise unprocessable("Cannot attach files that have not finished processing. Try again in a moment!")
        return [m.id for m in found]

    def _validate_text(self, text: str, spoiler: str, media_ids: list[str]) -> None:
        profile = self.profile
        length = profile_length(
            text, spoiler, counting=profile.counting, urls_in_full=profile.urls_in_full,
            counts_spoiler=profile.counts_spoiler, strips_blank=profile.strips_blank,
            characters_reserved_per_url=int(self.config["characters_reserved_per_url"]),
            unicode_query=bool(self.config["unicode_query_urls"]),
        )
        counted = text + (spoiler if profile.counts_spoiler else "")
        if not (counted.strip() if profile.strips_blank else counted) and not media_ids:
            raise ApiError(*profile.empty_error)
        if length > self.max_characters():
            status, message = profile.too_long_error
            raise ApiError(status, message.format(limit=self.max_characters()))

    def _language(self, value: Any, fallback: str | None) -> str | None:
        if isinstance(value, str) and value:
            if value in LANGUAGES:
                return value
            if value.lower() in LANGUAGES:
                return value.lower()
            base = value.split("-")[0].lower()
            if base in LANGUAGES:
                return base
        return fallback

    def _sensitive(self, value: Any, spoiler: str) -> bool:
        """Mastodon 4.7.3 keeps ``sensitive`` as sent (nil -> false): a CW does not imply it.

        (Recorded: spoiler_text="Content warning" with sensitive=0 answers sensitive: false.)
        Older servers forced it from the CW: MastodonFake(cw_implies_sensitive=True).
        """
        sensitive = bool(cast_bool(value))
        if self.config["cw_implies_sensitive"] and spoiler:
            sensitive = True
        return sensitive

    def _statuses_limiter(self, account: Account) -> Hit:
        return self.rate.peek("statuses", account.id, self.clock.now())

    def check_statuses_limit(self, account: Account) -> None:
        hit = self._statuses_limiter(account)
        if hit.count >= hit.limit:
            raise ApiError(429, "Too many requests", hit.headers(remaining=0))

    def statuses_limit_headers(self, account: Account) -> dict[str, str]:
        return self._statuses_limiter(account).headers()

    def update_credentials(self, account: Account, params: Params) -> None:
        """PATCH /api/v1/accounts/update_credentials (Mastodon's Api::V1::Accounts::CredentialsController): the
        profile fields bridge's tests touch are kept; the others (avatar, header, source[...]) are accepted.
        attribution_domains is normalised and validated as Mastodon's Account::AttributionDomains does: scheme
        and "*." dropped, blanks and repeats removed, at most 100, each a valid domain name, else 422."""
        errors = []
        if "attribution_domains" in params:
            domains = []
            for raw in params.list("attribution_domains"):
                text = str(raw).strip().removeprefix("http://").removeprefix("https://").removeprefix("*.")
                if text and text not in domains:
                    domains.append(text)
            if len(domains) > ATTRIBUTION_DOMAINS_LIMIT:
                errors.append(f"Attribution domains is too long (maximum is {ATTRIBUTION_DOMAINS_LIMIT} characters)")
            bad = [d for d in domains if not _DOMAIN_NAME.fullmatch(d)]
            if bad:
                errors.append(f"Attribution domains {bad[0]} is not a valid domain")
            if not errors:
                account.attribution_domains = domains
        fields = params.get("fields_attributes")
        if isinstance(fields, list) and len(fields) > 4:
            errors.append("Fields is too long (maximum is 4 characters)")
        if errors:
            raise ApiError(422, "Validation failed: " + ", ".join(errors))
        for name in ("display_name", "note"):
            if name in params:
                setattr(account, name, str(params.get(name)))
        for name in ("locked", "bot"):
            if name in params:
                setattr(account, name, bool(cast_bool(params.get(name))))
        source = params.get("source") if isinstance(params.get("source"), dict) else {}
        privacy = source.get("privacy", params.get("source[privacy]"))
        if privacy in ("public", "unlisted", "private"):
            account.default_visibility = privacy
        sensitive = source.get("sensitive", params.get("source[sensitive]"))
        if sensitive is not None:
            account.sensitive = bool(cast_bool(sensitive))

    def create_status(self, account: Account, token: Token, params: Params, idempotency_key: str | None) -> Status:
        key = (account.id if self.profile.idempotency == "account" else "", idempotency_key or "")
        if not (idempotency_key and self.profile.idempotency and self.profile.idempotency_replays_errors):
            return self._create_status(account, token, params, idempotency_key)
        now = self.clock.now()
        refusal = self.idempotent_refusals.get(key)
        if refusal is not None and refusal[1] > now:
            raise refusal[0]
        try:
            return self._create_status(account, token, params, idempotency_key)
        except ApiError as exc:
            self.idempotent_refusals[key] = (exc, now + float(self.config["idempotency_ttl"]))
            raise

    def _create_status(self, account: Account, token: Token, params: Params, idempotency_key: str | None) -> Status:
        now = self.clock.now()
        idempotency_key = idempotency_key if self.profile.idempotency else None
        idempotency_scope = account.id if self.profile.idempotency == "account" else ""
        if idempotency_key:
            entry = self.idempotency.get((idempotency_scope, idempotency_key))
            if entry is not None and entry[1] > now:
                original = self.statuses.get(entry[0])
                if original is None or original.deleted:
                    raise not_found()
                return original
        self.check_statuses_limit(account)
        if params.get("scheduled_at") or params.get("poll"):
            raise unprocessable("MastodonFake does not implement scheduled statuses or polls")
        text = str(params.get("status") or "")
        spoiler = str(params.get("spoiler_text") or "")
        if self.profile.blank_text_takes_cw and not text.strip() and spoiler.strip():
            # PostStatusService: a CW without text becomes the text.
            text, spoiler = spoiler, ""
        visibility = params.get("visibility") or account.default_visibility
        if visibility not in VISIBILITIES:
            raise unprocessable(f"'{visibility}' is not a valid visibility")
        in_reply_to = None
        if params.get("in_reply_to_id"):
            in_reply_to = self.get_status(str(params.get("in_reply_to_id")), account)
        media_ids = self._check_media_for_status(account, params.list("media_ids"), None)
        self._validate_text(text, spoiler, media_ids)
        sensitive = self._sensitive(params.get("sensitive"), spoiler)
        app = self.apps.get(token.app_id or "")
        status = Status(
            id=self.ids.next(),
            account_id=account.id,
            text=text,
            spoiler_text=spoiler,
            sensitive=sensitive,
            visibility=visibility,
            language=self._language(params.get("language"), account.language),
            media_ids=media_ids,
            created_at=now,
            application={"name": app.name, "website": app.website} if app else None,
            in_reply_to_id=in_reply_to.id if in_reply_to else None,
            in_reply_to_account_id=in_reply_to.account_id if in_reply_to else None,
        )
        self._render(status)
        for media_id in media_ids:
            self.media[media_id].status_id = status.id
        self.statuses[status.id] = status
        self.rate.increment("statuses", account.id, now)
        if idempotency_key:
            self.idempotency[(idempotency_scope, idempotency_key)] = (status.id, now + float(self.config["idempotency_ttl"]))
        self._schedule_card(status)
        return status

    def _render(self, status: Status) -> None:
        status.html, status.mentions, status.tags = text_to_html(status.text, self.base_url, self._resolve_mention)

    def update_status(self, account: Account, status_id: str, params: Params) -> Status:
        status = self.statuses.get(status_id)
        if status is None or status.deleted or status.account_id != account.id:
            raise not_found()
        self.check_statuses_limit(account)
        if params.get("poll"):
            raise unprocessable("MastodonFake does not implement polls")
        text = str(params.get("status") or "")
        spoiler = str(params.get("spoiler_text") or "")
        media_ids = self._check_media_for_status(account, params.list("media_ids"), status.id)
        if self.profile.validates_edits:
            self._validate_text(text, spoiler, media_ids)
        descriptions = params.get("media_attributes") or []
        limit = self.description_limit()
        for attrs in descriptions if isinstance(descriptions, list) else []:
            media = self.media.get(str(attrs.get("id")))
            if media is None or media.id not in media_ids:
                continue
            if attrs.get("description") is not None and len(str(attrs["description"])) > limit:
                raise unprocessable(f"Validation failed: Description is too long (maximum is {limit} characters)")
        if not status.history:
            status.history.append(self._snapshot(status))
        old_text = status.text
        for attrs in descriptions if isinstance(descriptions, list) else []:
            media = self.media.get(str(attrs.get("id")))
            if media is None or media.id not in media_ids:
                continue
            if attrs.get("description") is not None:
                media.description = str(attrs["description"])
            if attrs.get("focus"):
                media.focus = _parse_focus(attrs["focus"])
        status.text = text
        status.spoiler_text = spoiler
        status.sensitive = self._sensitive(params.get("sensitive"), spoiler)
        status.language = self._language(params.get("language"), status.language)
        for media_id in media_ids:
            self.media[media_id].status_id = status.id
        status.media_ids = media_ids
        now = self.clock.now()
        status.edited_at = now
        self._render(status)
        status.history.append(self._snapshot(status))
        self.rate.increment("statuses", account.id, now)
        if old_text != text or media_ids:
            status.card = None
            self._schedule_card(status)
        return status

    def _snapshot(self, status: Status) -> dict:
        return {
            "content": status.html,
            "spoiler_text": status.spoiler_text,
            "sensitive": status.sensitive,
            "created_at": iso_ms(status.edited_at or status.created_at),
            "media_ids": list(status.media_ids),
        }

    def delete_status(self, account: Account, status_id: str, delete_media: bool) -> Status:
        status = self.statuses.get(status_id)
        if status is None or status.deleted or status.account_id != account.id:
            raise not_found()
        status.deleted = True
        for media_id in status.media_ids:
            media = self.media.get(media_id)
            if media is None:
                continue
            if delete_media:
                media.status_id = f"deleted:{status.id}"
            else:
                media.status_id = None  # kept for "delete and redraft"
        return status

    def account_statuses(self, account: Account, viewer: Account | None, params: Params) -> tuple[list[Status], dict[str, str]]:
        try:
            limit = int(params.get("limit") or 20)
        except ValueError:
            limit = 20
        limit = max(1, min(limit, 40))
        items = [s for s in self.statuses.values() if s.account_id == account.id and self._visible(s, viewer)]
        if cast_bool(params.get("pinned")):
            return [], {}
        if cast_bool(params.get("exclude_replies")):
            items = [s for s in items if s.in_reply_to_id is None or s.in_reply_to_account_id == account.id]
        if cast_bool(params.get("only_media")):
            items = [s for s in items if s.media_ids]
        if cast_bool(params.get("exclude_direct")):
            items = [s for s in items if s.visibility != "direct"]
        if params.get("tagged"):
            tag = str(params.get("tagged")).lower()
            items = [s for s in items if tag in (t.lower() for t in s.tags)]
        key = lambda s: int(s.id)  # noqa: E731
        if params.get("max_id"):
            items = [s for s in items if key(s) < int(params.get("max_id"))]
        if params.get("since_id"):
            items = [s for s in items if key(s) > int(params.get("since_id"))]
        if params.get("min_id"):
            items = sorted((s for s in items if key(s) > int(params.get("min_id"))), key=key)[:limit]
            items.sort(key=key, reverse=True)
        else:
            items = sorted(items, key=key, reverse=True)[:limit]
        links = []
        url = f"{self.base_url}/api/v1/accounts/{account.id}/statuses"
        if items and len(items) == limit:
            links.append(f'<{url}?limit={limit}&max_id={items[-1].id}>; rel="next"')
        if items:
            links.append(f'<{url}?min_id={items[0].id}>; rel="prev"')
        return items, ({"link": ", ".join(links)} if links else {})

    # ------------------------------------------------------------------ media
    def create_media(self, account: Account, params: Params, synchronous: bool) -> Media:
        upload = params.files.get("file")
        if upload is None:
            raise unprocessable("Validation failed: File can't be blank")
        data: bytes = upload["data"]
        mime = (upload.get("content_type") or "").split(";")[0].strip().lower()
        sniffed = _sniff(data)
        if not mime or mime == "application/octet-stream":
            mime = sniffed or mimetypes.guess_type(upload.get("filename") or "")[0] or "application/octet-stream"
        if mime not in SUPPORTED_MIME_TYPES:
            raise unprocessable("Validation failed: File content type is invalid, File is invalid")
        description = params.get("description")
        limit = self.description_limit()
        if description is not None and len(str(description)) > limit:
            raise unprocessable(f"Validation failed: Description is too long (maximum is {limit} characters)")
        kind = "image" if mime.startswith("image/") else "audio" if mime.startswith("audio/") else "video"
        if mime == "image/gif":
            kind = "gifv"
        width = height = 0
        if kind == "image":
            size = _image_size(data)
            if size is None:
                raise unprocessable("File type of uploaded media could not be verified")
            width, height = size
        ext = (mimetypes.guess_extension(mime) or ".bin").lstrip(".")
        ext = {"jpe": "jpg", "jpeg": "jpg"}.get(ext, ext)
        media_id = self.ids.next()
        media = Media(
            id=media_id,
            account_id=account.id,
            type=kind,
            mime=mime,
            ext=ext,
            data=data,
            description=str(description) if description not in (None, "") else None,
            focus=_parse_focus(params.get("focus")) if params.get("focus") else None,
            created_at=self.clock.now(),
            width=width,
            height=height,
            processed=(kind == "image") or synchronous,
            file_key="/".join(media_id[i:i + 3] for i in range(0, len(media_id), 3)),
        )
        self.media[media.id] = media
        base = f"/system/media_attachments/files/{media.file_key}"
        self.files[f"{base}/original/{media.id}.{ext}"] = (mime, data)
        self.files[f"{base}/small/{media.id}.{ext if kind == 'image' else 'png'}"] = (mime if kind == "image" else "image/png", data if kind == "image" else _TINY_PNG)
        return media

    def _advance_processing(self, media: Media, poll: bool) -> None:
        if media.processed:
            return
        if poll:
            media.polls += 1
        polls = self.config["media_processing_polls"]
        seconds = self.config["media_processing_seconds"]
        done_by_polls = polls is not None and media.polls > int(polls)
        done_by_time = seconds is not None and self.clock.now() - media.created_at >= float(seconds)
        if done_by_polls or done_by_time:
            media.processed = True

    def own_unattached_media(self, account: Account, media_id: str) -> Media:
        media = self.media.get(media_id)
        if media is None or media.account_id != account.id or media.status_id is not None:
            raise not_found()
        return media

    def complete_media(self, media_id: str | None = None) -> None:
        with self.lock:
            for media in self.media.values():
                if media_id is None or media.id == media_id:
                    media.processed = True

    # ------------------------------------------------------------------ oauth
    def create_app(self, params: Params) -> App:
        name = str(params.get("client_name") or "").strip()
        if not name:
            raise unprocessable("Validation failed: Application name can't be blank")
        raw_uris = params.get("redirect_uris")
        if isinstance(raw_uris, list):
            uris = [str(u).strip() for u in raw_uris if str(u).strip()]
        else:
            uris = [u.strip() for u in str(raw_uris or "").splitlines() if u.strip()]
        if not uris:
            raise unprocessable("Validation failed: Redirect URI can't be blank")
        for uri in uris:
            if uri != OOB and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", uri):
                raise unprocessable("Validation failed: Redirect URI must be an absolute URI.")
        scopes = _split_scopes(params.get("scopes")) or ["read"]
        unknown = [s for s in scopes if s not in SCOPES_SUPPORTED]
        if unknown:
            raise unprocessable("Validation failed: Scopes must be a subset of the supported scopes")
        website = params.get("website") or None
        return self._new_app(name, website, scopes, uris)

    def app_json(self, app: App) -> dict:
        return {
            "id": app.id,
            "name": app.name,
            "website": app.website,
            "scopes": list(app.scopes),
            "redirect_uris": list(app.redirect_uris),
            "vapid_key": "BFakeVapidKeyForTestsOnly0000000000000000000000000000000000000000000000000000000000000000=",
            "redirect_uri": "\n".join(app.redirect_uris),
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "client_secret_expires_at": 0,
        }

    def authorize(self, client_id: str, username: str, scopes: list[str] | str | None = None, redirect_uri: str | None = None) -> str:
        """The user consents: returns an authorization code (what /oauth/authorize redirects with)."""
        with self.lock:
            app = self.apps.get(client_id)
            if app is None:
                raise ApiError(400, "invalid_client")
            wanted = _split_scopes(scopes) or ["read"]
            if any(s not in app.scopes for s in wanted):
                raise ApiError(400, "invalid_scope")
            redirect_uri = redirect_uri or app.redirect_uris[0]
            if redirect_uri not in app.redirect_uris:
                raise ApiError(400, "invalid_redirect_uri")
            account = self.account_of(username)
            code = secrets.token_urlsafe(32)[:43]
            self.grants[code] = Grant(code, app.client_id, account.id, wanted, redirect_uri, self.clock.now())
            return code

    def token_request(self, params: Params, basic_auth: tuple[str, str] | None) -> dict:
        client_id = params.get("client_id") or (basic_auth[0] if basic_auth else None)
        client_secret = params.get("client_secret") or (basic_auth[1] if basic_auth else None)
        grant_type = params.get("grant_type")
        app = self.apps.get(str(client_id or ""))
        if grant_type not in ("authorization_code", "client_credentials", "refresh_token", "password"):
            raise _oauth_error(400, "unsupported_grant_type")
        if grant_type in ("password", "refresh_token"):
            raise _oauth_error(400, "unsupported_grant_type")
        if app is None or app.client_secret != client_secret:
            raise _oauth_error(401, "invalid_client")
        now = self.clock.now()
        if grant_type == "client_credentials":
            scopes = _split_scopes(params.get("scope")) or ["read"]
            if any(s not in app.scopes for s in scopes):
                raise _oauth_error(400, "invalid_scope")
            token = self.issue_token(None, scopes, app.client_id)
        else:
            grant = self.grants.get(str(params.get("code") or ""))
            if (
                grant is None
                or grant.used
                or grant.app_id != app.client_id
                or now - grant.created_at > float(self.config["oauth_code_ttl"])
                or (params.get("redirect_uri") or grant.redirect_uri) != grant.redirect_uri
            ):
                raise _oauth_error(400, "invalid_grant")
            grant.used = True
            scopes = grant.scopes
            token = self.issue_token(grant.account_id, scopes, app.client_id)
        return {"access_token": token, "token_type": "Bearer", "scope": " ".join(scopes), "created_at": int(now)}

    def revoke_request(self, params: Params, basic_auth: tuple[str, str] | None) -> dict:
        client_id = params.get("client_id") or (basic_auth[0] if basic_auth else None)
        client_secret = params.get("client_secret") or (basic_auth[1] if basic_auth else None)
        app = self.apps.get(str(client_id or ""))
        if app is None or app.client_secret != client_secret:
            raise _oauth_error(403, "unauthorized_client")
        token = self.tokens.get(str(params.get("token") or ""))
        if token is not None and token.app_id == app.client_id:
            token.revoked = True
        return {}

    # ------------------------------------------------------------------ cards
    def _schedule_card(self, status: Status) -> None:
        if not self.card_fetch_enabled or status.media_ids:
            return
        url = self._first_link(status.text)
        if url is None:
            return
        status.card_generation += 1
        with self._card_cond:
            self._card_pending += 1
        self._ensure_card_thread()
        self._card_queue.put((status.id, status.card_generation))

    def _first_link(self, text: str) -> str | None:
        own = urllib.parse.urlsplit(self.base_url).netloc.lower()
        for entity in find_entities(text, bool(self.config["unicode_query_urls"])):
            if entity.kind != "url":
                continue
            parts = urllib.parse.urlsplit(entity.value)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                continue
            if parts.netloc.lower() == own:
                continue
            url = entity.value
            if not parts.path:
                url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/", parts.query, parts.fragment))
            return url
        return None

    def _ensure_card_thread(self) -> None:
        with self._card_cond:
            if self._card_thread is None or not self._card_thread.is_alive():
                self._card_thread = threading.Thread(target=self._card_worker, name="mastodon-fake-cards", daemon=True)
                self._card_thread.start()

    def _card_worker(self) -> None:
        while True:
            job = self._card_queue.get()
            if job is None:
                return
            try:
                self._fetch_card(*job)
            except Exception:
                pass
            finally:
                with self._card_cond:
                    self._card_pending -= 1
                    self._card_cond.notify_all()

    def _fetch_card(self, status_id: str, generation: int) -> None:
        with self.lock:
            status = self.statuses.get(status_id)
            if status is None or status.deleted or status.card_generation != generation or status.media_ids:
                return
            url = self._first_link(status.text)
            hosts = dict(self.card_hosts)
        if url is None:
            return
        fetched = cards.fetch(url, hosts, accept="text/html")
        if fetched is None:
            return
        code, mime, body = fetched
        if code != 200 or mime != "text/html":
            return
        card = cards.parse_page(body.decode("utf-8", "replace"), url)
        if card is None:
            return
        if card.get("_image_source"):
            image = cards.fetch(card["_image_source"], hosts, accept="image/*")
            if image and image[0] == 200 and image[1].startswith("image/"):
                key = hashlib.sha1(card["_image_source"].encode()).hexdigest()[:16]
                ext = (mimetypes.guess_extension(image[1]) or ".png").lstrip(".")
                path = f"/system/cache/preview_cards/images/{key}/original/{key}.{ext}"
                size = _image_size(image[2])
                with self.lock:
                    self.files[path] = (image[1], image[2])
                card["image"] = f"{self.base_url}{path}"
                card["blurhash"] = _BLURHASH
                if size and not card.get("width"):
                    card["width"], card["height"] = size
        with self.lock:
            status = self.statuses.get(status_id)
            if status is None or status.deleted or status.card_generation != generation or status.media_ids:
                return
            status.card = card

    def wait_for_cards(self, timeout: float = 10.0) -> bool:
        """Block until no card fetch is pending. Returns False on timeout."""
        with self._card_cond:
            return self._card_cond.wait_for(lambda: self._card_pending == 0, timeout)

    def stop_workers(self) -> None:
        if self._card_thread is not None and self._card_thread.is_alive():
            self._card_queue.put(None)


def _www_authenticate(description: str) -> dict[str, str]:
    return {"www-authenticate": f'Bearer realm="Doorkeeper", error="invalid_token", error_description="{description}"'}


_OAUTH_DESCRIPTIONS = {
    "invalid_client": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
    "invalid_grant": "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
    "unsupported_grant_type": "The authorization grant type is not supported by the authorization server.",
    "invalid_scope": "The requested scope is invalid, unknown, or malformed.",
    "unauthorized_client": "You are not authorized to revoke this token",
}


class OAuthError(ApiError):
    def __init__(self, status: int, error: str):
        super().__init__(status, error)
        self.body = {"error": error, "error_description": _OAUTH_DESCRIPTIONS.get(error, error)}


def _oauth_error(status: int, error: str) -> OAuthError:
    return OAuthError(status, error)


def _parse_focus(value: Any) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in str(value).split(",")[:2])
        return (max(-1.0, min(1.0, x)), max(-1.0, min(1.0, y)))
    except (ValueError, TypeError):
        return None


def _fit(width: int, height: int, box: int) -> tuple[int, int]:
    if not width or not height:
        return (0, 0)
    if width * height <= box * box:
        return (width, height)
    scale = (box * box / (width * height)) ** 0.5
    return (max(1, int(width * scale)), max(1, int(height * scale)))


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data.startswith(b"\x1aE\xdf\xa3"):
        return "video/webm"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if data.startswith(b"fLaC"):
        return "audio/flac"
    return None


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return (1, 1) if _sniff(data) else None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


_TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def tiny_png() -> bytes:
    """A valid 1x1 PNG, handy for media upload tests."""
    return _TINY_PNG
