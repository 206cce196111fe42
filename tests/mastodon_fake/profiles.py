"""How the servers that speak Mastodon's client API differ, as the fake reproduces them.

``MastodonFake(profile=NAME)`` answers like that server where it matters to a client posting once:
the instance document's ``version``, trailing-slash routes, the status code and message of a refused
status, whether ``Idempotency-Key`` is honoured, how a status is counted, and which scopes the
account's own statuses need. Everything else stays Mastodon's.

This table is the fake's own, read from each server's source (cited per row), and deliberately not
bridge's (bridge/platforms/mastodon/servers.py): a test of bridge against the fake must not pass because
both sides share one mistake.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FakeProfile:
    name: str
    version: str
    # "ok": /api/v1/instance/ answers like /api/v1/instance; "404": not found; "redirect": 301 to the
    # path without the slash (gin's RedirectTrailingSlash)
    trailing_slash: str
    # (status, message) for a status with nothing in it, and for one over the limit ({limit} filled in)
    empty_error: tuple[int, str]
    too_long_error: tuple[int, str]
    # "account": a repeated key returns the account's first status; "global": one cache for all
    # accounts (Pleroma's IdempotencyPlug keys on the header alone); None: the header is ignored
    idempotency: str | None
    idempotency_ttl: float
    counting: str  # "graphemes" | "codepoints"
    urls_in_full: bool  # False: each URL counts characters_reserved_per_url
    counts_spoiler: bool  # the content warning counts against the limit
    strips_blank: bool  # whitespace-only text is empty
    characters_reserved_per_url: int  # what the instance document advertises
    # any one of these scopes lets a token call the endpoint (a top-level "read" covers "read:x"
    # except where the server wants the top-level scope itself)
    verify_credentials_scopes: tuple[str, ...]
    account_statuses_scopes: tuple[str, ...]
    account_statuses_anonymous: bool  # readable without a token
    media_get_scopes: tuple[str, ...]  # GET /api/v1/media/:id (polling an upload)
    forbidden_message: str  # body of the 403 for a missing scope
    has_instance_v2: bool = True
    # True: v1's limits are Pleroma's top-level max_toot_chars, without a "configuration" block
    v1_max_toot_chars: bool = False
    # Mastodon's PostStatusService: a content warning without text becomes the text
    blank_text_takes_cw: bool = False
    # an edit is held to the same length rule as a new status
    validates_edits: bool = True
    # a refused status is remembered under its key too, and the refusal replayed (Pleroma's IdempotencyPlug
    # caches whatever response went out); Mastodon stores the key only after a status was made
    idempotency_replays_errors: bool = False
    # the JSON entities: "mastodon" (4.7.3's) or "takahe" (takahe_entities.py); 404s are HTML there
    entities: str = "mastodon"
    # a content warning makes the status sensitive whatever was sent (Mastodon 4.7 keeps "sensitive" as sent)
    cw_implies_sensitive: bool = False
    # (status, plain-text body) for every request with a bearer token the server does not know or has revoked,
    # before any route looks at it; None: Mastodon's 401 with a JSON error from the route
    refused_token: tuple[int, str] | None = None


PROFILES: dict[str, FakeProfile] = {
    # mastodon/mastodon: app/validators/status_length_validator.rb (graphemes, URL = 23, 422),
    # app/controllers/concerns/... Idempotency in app/services/post_status_service.rb (per account, 1 h),
    # app/controllers/api/v1/accounts/credentials_controller.rb (profile | read | read:accounts)
    "mastodon": FakeProfile(
        name="mastodon", version="4.7.3", trailing_slash="ok",
        empty_error=(422, "Validation failed: Text can't be blank"),
        too_long_error=(422, "Validation failed: Text character limit of {limit} exceeded"),
        idempotency="account", idempotency_ttl=3600.0,
        counting="graphemes", urls_in_full=False, counts_spoiler=True, strips_blank=True,
        characters_reserved_per_url=23,
        verify_credentials_scopes=("profile", "read", "read:accounts"),
        account_statuses_scopes=("read", "read:statuses"), account_statuses_anonymous=True,
        media_get_scopes=("write", "write:media"),
        forbidden_message="This action is outside the authorized scopes",
        blank_text_takes_cw=True,
    ),
    # jointakahe/takahe d45f22c: api/views/statuses.py post_status (len() of the status alone, 400),
    # api/urls.py (paths without a slash), api/views/accounts.py (@scope_required("read") on
    # verify_credentials), api/models/token.py has_scope, api/decorators.py (403 out_of_scope_for_token,
    # 401 without a token), api/middleware.py ApiTokenMiddleware (400 "Invalid Bearer token" for an unknown or
    # revoked token); no Idempotency-Key anywhere but CORS_ALLOW_HEADERS in takahe/settings.py
    "takahe": FakeProfile(
        name="takahe", version="takahe/0.11.0", trailing_slash="404",
        empty_error=(400, "Status is empty"),
        too_long_error=(400, "Status is too long"),
        idempotency=None, idempotency_ttl=0.0,
        counting="codepoints", urls_in_full=True, counts_spoiler=False, strips_blank=False,
        characters_reserved_per_url=23,
        verify_credentials_scopes=("read",),
        account_statuses_scopes=("read:statuses",), account_statuses_anonymous=False,
        media_get_scopes=("read:media",),  # api/views/media.py @scope_required("read:media")
        forbidden_message="out_of_scope_for_token",
        validates_edits=False,  # edit_status calls post.edit_local without a length check
        entities="takahe",
        cw_implies_sensitive=True,  # activities/models/post.py create_local: sensitive=bool(summary) or sensitive
        refused_token=(400, "Invalid Bearer token"),
    ),
    # superseriousbusiness/gotosocial 57cb4fe: internal/processing/status/common.go validateStatusContent
    # (len([]rune(status)) + len([]rune(spoiler)), 400 "Bad Request: ..."), internal/typeutils/
    # internaltofrontend.go (version = software version, reserved per URL 25), cmd/gotosocial/main.go
    # (version "X+git-abcdefg"), internal/router/router.go gin.New() (RedirectTrailingSlash),
    # internal/api/client/accounts/accountverify.go (profile | read:accounts), statuses.go (read:statuses,
    # token required), internal/api/util/auth.go (403 "Forbidden: token has insufficient scope permission");
    # Idempotency appears only as "Currently unused" in internal/gtsmodel/scheduledstatus.go
    "gotosocial": FakeProfile(
        name="gotosocial", version="0.20.0+git-57cb4fe", trailing_slash="redirect",
        empty_error=(400, "Bad Request: status contains no text, media or poll"),
        too_long_error=(400, "Bad Request: text with spoiler exceed max chars ({limit})"),
        idempotency=None, idempotency_ttl=0.0,
        counting="codepoints", urls_in_full=True, counts_spoiler=True, strips_blank=False,
        characters_reserved_per_url=25,
        verify_credentials_scopes=("profile", "read:accounts"),
        account_statuses_scopes=("read:statuses",), account_statuses_anonymous=False,
        media_get_scopes=("write:media",),  # internal/api/client/media/mediaget.go
        forbidden_message="Forbidden: token has insufficient scope permission",
    ),
    # Akkoma (a Pleroma fork; read in BDX-town/Akkoma 071bb07): lib/pleroma/web/common_api/utils.ex
    # validate_character_limit (String.length = graphemes, of String.trim(status <> spoiler), URLs in
    # full), activity_draft.ex full_payload, mastodon_api/controllers/status_controller.ex create (422),
    # plugs/idempotency_plug.ex (cache keyed by the header alone, any response replayed, 6 h in application.ex),
    # mastodon_api/views/instance_view.ex ("2.7.2 (compatible; Akkoma X)", max_toot_chars, no v2 route
    # in router.ex), account_controller.ex (read:accounts; read:statuses, anonymous allowed),
    # plugs/o_auth_scopes_plug.ex (403 "Insufficient permissions: ...")
    "akkoma": FakeProfile(
        name="akkoma", version="2.7.2 (compatible; Akkoma 3.13.2)", trailing_slash="ok",
        empty_error=(422, "Cannot post an empty status without attachments"),
        too_long_error=(422, "The status is over the character limit"),
        idempotency="global", idempotency_ttl=6 * 3600.0,
        counting="graphemes", urls_in_full=True, counts_spoiler=True, strips_blank=True,
        characters_reserved_per_url=23,
        verify_credentials_scopes=("read:accounts",),
        account_statuses_scopes=("read:statuses",), account_statuses_anonymous=True,
        media_get_scopes=("read:media",),  # mastodon_api/controllers/media_controller.ex
        forbidden_message="Insufficient permissions: {scopes}.",
        has_instance_v2=False, v1_max_toot_chars=True, idempotency_replays_errors=True,
    ),
}


def profile_named(name: str) -> FakeProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None
