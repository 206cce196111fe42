"""Servers that speak Mastodon's client API, and how each one behaves where they differ.

A profile is chosen from the instance document's `version` string (`4.3.0`, `0.17.0 (compatible; GoToSocial
0.17.0)`, `2.7.2 (compatible; Akkoma 3.13.2)`, `takahe/0.11.0`, ...). Each cell cites the file of the server's
public source where the behaviour lives. Adding a server is one row in PROFILES and one pattern in
identify(); software bridge does not know gets CONSERVATIVE, which assumes the least.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerProfile:
    software: str
    # A repeated Idempotency-Key returns the first status instead of making a second one.
    honours_idempotency_key: bool
    # "graphemes" (Mastodon counts extended grapheme clusters), "codepoints" (len() of the text) or
    # "utf16" (UTF-16 code units: C#'s string.Length; an emoji outside the BMP counts 2).
    counting: str
    # True: every URL counts its own length; False: every URL counts characters_reserved_per_url.
    urls_in_full: bool
    # HTTP status codes the server gives a status it refuses as invalid (empty, too long).
    validation_statuses: frozenset[int]
    # Scopes a token needs to find the account's own statuses (verify_credentials + accounts/:id/statuses).
    own_statuses_scopes: tuple[str, ...]
    # cell name -> "repo path" of the source file where that behaviour lives.
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    # How long a server that honours the key remembers it, in seconds (Mastodon's hour unless the source
    # says longer: trusting a key for less time than the server keeps it is the safe side).
    idempotency_window: float = 3600.0


NOT_VERIFIED = "not verified"

CONSERVATIVE = ServerProfile(
    software="unknown",
    honours_idempotency_key=False,
    counting="codepoints",
    urls_in_full=True,
    validation_statuses=frozenset({400, 422}),
    own_statuses_scopes=("read",),
)


def _mastodon_like(software: str, repo: str, *, scopes: tuple[str, ...] = ("read:accounts", "read:statuses"),
                   scope_source: str = "app/controllers/api/v1/accounts/credentials_controller.rb") -> ServerProfile:
    """Mastodon and the forks that keep its status code (glitch-soc, Hometown): same files, same rules."""
    return ServerProfile(
        software=software,
        honours_idempotency_key=True,
        counting="graphemes",
        urls_in_full=False,
        validation_statuses=frozenset({422}),
        own_statuses_scopes=scopes,
        sources={
            "honours_idempotency_key": f"{repo} app/services/post_status_service.rb",
            "idempotency_window": f"{repo} app/services/post_status_service.rb",
            "counting": f"{repo} app/validators/status_length_validator.rb",
            "urls_in_full": f"{repo} app/validators/status_length_validator.rb",
            "validation_statuses": f"{repo} app/controllers/concerns/api/error_handling.rb",
            "own_statuses_scopes": f"{repo} {scope_source}",
            "version": f"{repo} lib/mastodon/version.rb",
        },
    )


def _pleroma_like(software: str, repo: str) -> ServerProfile:
    """Pleroma and its fork Akkoma: String.length (graphemes) of the trimmed text + content warning, as written."""
    return ServerProfile(
        software=software,
        honours_idempotency_key=True,
        counting="graphemes",
        urls_in_full=True,
        validation_statuses=frozenset({422}),
        own_statuses_scopes=("read:accounts", "read:statuses"),
        idempotency_window=6 * 3600.0,
        sources={
            "honours_idempotency_key": f"{repo} lib/pleroma/web/plugs/idempotency_plug.ex",
            "idempotency_window": f"{repo} lib/pleroma/application.ex",
            "counting": f"{repo} lib/pleroma/web/common_api/utils.ex",
            "urls_in_full": f"{repo} lib/pleroma/web/common_api/activity_draft.ex",
            "validation_statuses": f"{repo} lib/pleroma/web/mastodon_api/controllers/status_controller.ex",
            "own_statuses_scopes": f"{repo} lib/pleroma/web/mastodon_api/controllers/account_controller.ex",
            "version": f"{repo} lib/pleroma/web/mastodon_api/views/instance_view.ex",
        },
    )


# One row per server. docs/mastodon-servers.md is the same table in prose, with the commit each file was read at.
PROFILES: dict[str, ServerProfile] = {
    # Upstream's snapshot was too large to fetch here; these paths were read in glitch-soc's copy of them
    "mastodon": _mastodon_like("mastodon", "mastodon/mastodon"),
    "glitch-soc": _mastodon_like("glitch-soc", "glitch-soc/mastodon"),
    # The snapshot read (Hometown on Mastodon 3.4) asks read or read:accounts for verify_credentials
    "hometown": _mastodon_like("hometown", "hometown-fork/hometown"),
    "takahe": ServerProfile(
        software="takahe",
        honours_idempotency_key=False,
        counting="codepoints",
        urls_in_full=True,
        validation_statuses=frozenset({400}),
        own_statuses_scopes=("read",),
        sources={
            "honours_idempotency_key": "jointakahe/takahe api/views/statuses.py",  # post_status never reads it
            "counting": "jointakahe/takahe api/views/statuses.py",  # len(details.status) > post_length
            "urls_in_full": "jointakahe/takahe api/views/statuses.py",
            "validation_statuses": "jointakahe/takahe api/views/statuses.py",  # ApiError(400, "Status is too long")
            "own_statuses_scopes": "jointakahe/takahe api/views/accounts.py",  # @scope_required("read"); token.py
            "version": "jointakahe/takahe api/views/instance.py",  # f"takahe/{__version__}"
        },
    ),
    "gotosocial": ServerProfile(
        software="gotosocial",
        honours_idempotency_key=False,
        counting="codepoints",
        urls_in_full=True,
        validation_statuses=frozenset({400}),
        own_statuses_scopes=("read:accounts", "read:statuses"),
        sources={
            "honours_idempotency_key": "superseriousbusiness/gotosocial internal/api/client/statuses/statuscreate.go",
            "counting": "superseriousbusiness/gotosocial internal/processing/status/common.go",  # len([]rune(...))
            "urls_in_full": "superseriousbusiness/gotosocial internal/processing/status/common.go",
            "validation_statuses": "superseriousbusiness/gotosocial internal/processing/status/common.go",
            "own_statuses_scopes": "superseriousbusiness/gotosocial internal/api/client/accounts/accountverify.go",
            "version": "superseriousbusiness/gotosocial internal/typeutils/internaltofrontend.go",
        },
    ),
    # Akkoma's home is akkoma.dev; read in BDX-town/Akkoma, a GitHub fork of it (3.16.0, 2025-10)
    "akkoma": _pleroma_like("akkoma", "BDX-town/Akkoma"),
    "pleroma": _pleroma_like("pleroma", "pleroma-social/pleroma"),
    # Friendica's Mastodon API checks no length at all (the status goes to Item::insert as it is)
    "friendica": ServerProfile(
        software="friendica",
        honours_idempotency_key=False,
        counting="codepoints",
        urls_in_full=True,
        validation_statuses=frozenset({400, 422}),
        own_statuses_scopes=("read",),
        sources={
            "honours_idempotency_key": "friendica/friendica src/Module/Api/Mastodon/Statuses.php",
            "counting": NOT_VERIFIED,  # no length check in Statuses.php post(); conservative value
            "urls_in_full": NOT_VERIFIED,
            "validation_statuses": NOT_VERIFIED,  # nothing refused for length; conservative value
            "own_statuses_scopes": "friendica/friendica src/Module/Api/Mastodon/Accounts/VerifyCredentials.php",
            "version": "friendica/friendica src/Module/Api/Mastodon/InstanceV2.php",
        },
    ),
    # Sharkey 2023.12 (GitHub's last snapshot; it moved to activitypub.software): its Mastodon layer passes
    # the status to Misskey's notes/create (JSON-schema maxLength, code points) and answers any failure 401
    "sharkey": ServerProfile(
        software="sharkey",
        honours_idempotency_key=False,
        counting="codepoints",
        urls_in_full=True,
        validation_statuses=frozenset({401}),
        own_statuses_scopes=("read",),
        sources={
            "honours_idempotency_key": "transfem-org/Sharkey packages/backend/src/server/api/mastodon/endpoints/status.ts",
            "counting": "transfem-org/Sharkey packages/backend/src/server/api/endpoints/notes/create.ts",
            "urls_in_full": "transfem-org/Sharkey packages/backend/src/server/api/endpoints/notes/create.ts",
            "validation_statuses": "transfem-org/Sharkey packages/backend/src/server/api/mastodon/endpoints/status.ts",
            "own_statuses_scopes": NOT_VERIFIED,  # verify_credentials calls Misskey's i (any token); conservative
            "version": "transfem-org/Sharkey packages/backend/src/server/api/mastodon/endpoints/meta.ts",
        },
    ),
    "iceshrimp.net": ServerProfile(
        software="iceshrimp.net",
        honours_idempotency_key=True,
        counting="utf16",
        urls_in_full=True,
        validation_statuses=frozenset({400, 422}),
        own_statuses_scopes=("read:accounts", "read:statuses"),
        idempotency_window=24 * 3600.0,
        sources={
            "honours_idempotency_key": "kaido2ki/Iceshrimp.NET Iceshrimp.Backend/Controllers/Mastodon/StatusController.cs",
            "idempotency_window": "kaido2ki/Iceshrimp.NET Iceshrimp.Backend/Controllers/Mastodon/StatusController.cs",
            "counting": "kaido2ki/Iceshrimp.NET Iceshrimp.Backend/Core/Services/NoteService.cs",  # Text.Length
            "urls_in_full": "kaido2ki/Iceshrimp.NET Iceshrimp.Backend/Core/Services/NoteService.cs",
            "validation_statuses": "kaido2ki/Iceshrimp.NET Iceshrimp.Backend/Controllers/Mastodon/StatusController.cs",
            "own_statuses_scopes": "kaido2ki/Iceshrimp.NET Iceshrimp.Backend/Controllers/Mastodon/AccountController.cs",
            "version": "kaido2ki/Iceshrimp.NET Iceshrimp.Backend/Controllers/Mastodon/Schemas/InstanceInfoV2Response.cs",
        },
    ),
    # The JavaScript Iceshrimp (a Firefish fork) is not on GitHub: nothing read, everything conservative
    "iceshrimp": ServerProfile(
        software="iceshrimp",
        honours_idempotency_key=False,
        counting="codepoints",
        urls_in_full=True,
        validation_statuses=frozenset({400, 422}),
        own_statuses_scopes=("read",),
        sources={cell: NOT_VERIFIED for cell in ("honours_idempotency_key", "counting", "urls_in_full",
                                                 "validation_statuses", "own_statuses_scopes", "version")},
    ),
}

# "<Mastodon API level> (compatible; <Software> <version>)": Pleroma, Akkoma, Friendica, Sharkey, Iceshrimp
# (Iceshrimp.NET writes "Iceshrimp.NET/<version>"); the issue quotes GoToSocial in this form too.
_COMPATIBLE = re.compile(r"\S+ \(compatible; ([\w.-]+?)[ /](\S+?)\)$")
_COMPATIBLE_SOFTWARE = {
    "pleroma": "pleroma", "akkoma": "akkoma", "friendica": "friendica", "sharkey": "sharkey",
    "iceshrimp": "iceshrimp", "iceshrimp.net": "iceshrimp.net", "gotosocial": "gotosocial",
}
# GoToSocial's own form, cmd/gotosocial/main.go: "<version>+git-<commit>" (no "+git-..." when built without
# VCS data), behind "3.5.3+" with instance-inject-mastodon-version (internaltofrontend.go toMastodonVersion)
_RELEASE = r"\d+\.\d+\.\d+(?:-[\w.-]+)?"
_GOTOSOCIAL = re.compile(rf"(?:\d+\.\d+\.\d+\+)?({_RELEASE}\+git-[0-9a-f]+)|\d+\.\d+\.\d+\+({_RELEASE})")
# Mastodon's lib/mastodon/version.rb: "4.3.0", "4.4.0-beta.1", "4.7.0-alpha.2+glitch"
_MASTODON = re.compile(rf"[1-9]\d*\.\d+\.\d+(?:-[\w.-]+)?(?:\+([\w.+-]+))?")


# A refused token is 401 on Mastodon, GoToSocial and Akkoma. Takahē answers every request whose bearer token it does
# not know or has revoked with 400 and the words "Invalid Bearer token" (not JSON), before any view sees the request
# (jointakahe/takahe api/middleware.py, ApiTokenMiddleware; read at d45f22c). It is read from the words, on any server:
# the profile is not known yet when the first request (the instance document) is refused, and the whole answer must be
# those words, so a validation error quoting a post can never pause an account.
_TOKEN_REFUSED_400 = re.compile(r"\s*invalid bearer token\s*", re.IGNORECASE)


def refuses_token(status: int | None, words: str | None) -> bool:
    """Whether an error answer (HTTP status, its JSON error or else its body) refuses the access token itself
    (unknown, revoked); a token that lacks a scope is a 403."""
    return status == 401 or (status == 400 and bool(words) and bool(_TOKEN_REFUSED_400.fullmatch(words)))


# The instance document, newest first, spelled without a trailing slash: Takahē answers 404 to
# `/api/v2/instance/`, which is what Mastodon.py asks for.
INSTANCE_PATHS = ("/api/v2/instance", "/api/v1/instance")


def profile_named(name: str | None) -> ServerProfile:
    """A profile by its key in PROFILES (as stored with an account's limits); CONSERVATIVE for anything else."""
    return PROFILES.get(name or "", CONSERVATIVE)


def profile_key(profile: ServerProfile) -> str:
    """The key under which `profile` is in PROFILES ("unknown" for CONSERVATIVE)."""
    return next((key for key, value in PROFILES.items() if value is profile), CONSERVATIVE.software)


def identify(version: str | None) -> tuple[ServerProfile, str | None]:
    """The profile for an instance's `version` string, and the software's own version when it says one."""
    text = (version or "").strip()
    match = re.match(r"takahe/(\S+)", text, re.IGNORECASE)
    if match:
        return PROFILES["takahe"], match.group(1)
    match = _COMPATIBLE.fullmatch(text)
    if match:
        key = _COMPATIBLE_SOFTWARE.get(match.group(1).lower())
        return (PROFILES[key], match.group(2)) if key else (CONSERVATIVE, None)
    match = _GOTOSOCIAL.fullmatch(text)
    if match:
        return PROFILES["gotosocial"], match.group(1) or match.group(2)
    match = _MASTODON.fullmatch(text)
    if match:
        metadata = (match.group(1) or "").lower()
        for fork in ("glitch", "hometown"):  # build metadata names the fork: "+glitch", "+hometown-1.1.1"
            if fork in metadata:
                return PROFILES["glitch-soc" if fork == "glitch" else fork], text
        return PROFILES["mastodon"], text
    return CONSERVATIVE, None
