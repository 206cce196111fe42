"""Mastodon, and every server that speaks its API (GoToSocial, Akkoma, Takahē, ...).

    account.py           the [accounts.NAME] table (instance, access_token)
    limits.py            a server's limits (GET /api/v2/instance) and how they are cached
    counting.py          how a server counts a status (URLs, mentions, graphemes / code points / UTF-16)
    payload.py           Post -> status parameters (and preview's description of them)
    target.py            publishing through Mastodon.py, with the Idempotency-Key as the retry identity
    servers.py           which server software does what (the capability table, docs/mastodon-servers.md)
    deadline_session.py  one deadline per request for Mastodon.py's requests session
    login.py             `bridge login mastodon` (OAuth authorization-code flow)
    doctor.py, status.py what `bridge doctor` and `bridge status` add for a Mastodon account
    attribution.py       Mastodon 4.4+ link cards crediting the writer: doctor's check, `bridge attribution`
"""

from __future__ import annotations

from bridge.config import DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED
from bridge.platforms.base import Platform, lazy
from bridge.platforms.mastodon.account import MastodonAccount
from bridge.platforms.mastodon.limits import MASTODON_DEFAULT_MAX_MEDIA

HERE = __name__

PLATFORM = Platform(
    name="mastodon",
    title="Mastodon",
    account_model=MastodonAccount,
    credential="access_token",
    credential_noun="an access token",
    make_target=lazy(f"{HERE}.target", "make_target"),  # imports Mastodon.py
    payload=lazy(f"{HERE}.payload", "payload"),
    describe=lazy(f"{HERE}.payload", "describe"),
    default_templates=(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED),
    max_images=MASTODON_DEFAULT_MAX_MEDIA,
    server_limits=True,
    uses_article_page=lazy(f"{HERE}.payload", "uses_article_page"),
    doctor_details=lazy(f"{HERE}.doctor", "details"),
    doctor_checks=lazy(f"{HERE}.doctor", "upload_check"),
    doctor_config_checks=lazy(f"{HERE}.attribution", "check_attribution"),
    credential_check=lazy(f"{HERE}.doctor", "credential_check"),
    status=lazy(f"{HERE}.status", "account_status"),
    status_text=lazy(f"{HERE}.status", "status_text"),
    held_posts_fix=lazy(f"{HERE}.status", "held_posts_fix"),
    login=lazy(f"{HERE}.login", "command"),
    long_note_threads=True,
    reactions=lazy(f"{HERE}.reactions", "gather"),
    commands=(lazy(f"{HERE}.attribution_cmd", "command"),),
)
