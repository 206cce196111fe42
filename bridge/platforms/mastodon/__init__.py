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
"""

from __future__ import annotations

from bridge.config import DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED
from bridge.platforms.base import Platform, TargetContext
from bridge.platforms.mastodon.account import MastodonAccount
from bridge.platforms.mastodon.limits import MASTODON_DEFAULT_MAX_MEDIA


def _make_target(context: TargetContext):
    from bridge.platforms.mastodon.target import MastodonTarget  # imports Mastodon.py

    return MastodonTarget(context.account, context.settings, context.secret, context.state,
                          media_fetcher=context.media_fetcher, user_agent=context.user_agent,
                          timeout=(context.connect_timeout, context.read_timeout),
                          total_timeout=context.total_timeout)


def _payload(post, settings, inputs):
    from bridge.platforms.mastodon.payload import payload

    return payload(post, settings, inputs)


def _describe(payload, server_limits):
    from bridge.platforms.mastodon.payload import describe

    return describe(payload, server_limits)


def _doctor_checks(config, account, label, info):
    from bridge.platforms.mastodon.doctor import upload_check

    return upload_check(config, account, label, info)


def _status(name, account, info):
    from bridge.platforms.mastodon.status import account_status

    return account_status(name, account, info)


def _held_posts_fix(name, account, info):
    from bridge.platforms.mastodon.status import held_posts_fix

    return held_posts_fix(name, account, info)


def _login():
    from bridge.platforms.mastodon.login import mastodon

    return mastodon


PLATFORM = Platform(
    name="mastodon",
    title="Mastodon",
    account_model=MastodonAccount,
    credential="access_token",
    credential_noun="an access token",
    make_target=_make_target,
    payload=_payload,
    describe=_describe,
    default_templates=(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED),
    max_images=MASTODON_DEFAULT_MAX_MEDIA,
    server_limits=True,
    doctor_checks=_doctor_checks,
    status=_status,
    held_posts_fix=_held_posts_fix,
    login=_login,
)
