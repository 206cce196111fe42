"""Threads (Meta): each entry as a text post with its link preview, through Meta's official Threads API.

    account.py   the [accounts.NAME] table (app_id, app_secret, access_token, graph_url, user_id)
    payload.py   Post -> container parameters: the 500-character rule, link_attachment, one topic tag. Pure
    graph.py     talking to graph.threads.net: one request, Meta's error bodies -> bridge.errors
    tokens.py    the long-lived token: refreshed daily once 24 h old, kept in the state (0600); its expiry for alerts
    target.py    container, stored, then published: the container id is the retry identity
    status.py    what `bridge status` and `bridge doctor` add: the token's expiry, the publishing quota
    login.py     `bridge login threads` (OAuth code flow -> short-lived -> long-lived token)
    reactions.py the way back: a post's conversation (replies) and insights (counts)
docs/threads.md tells the choices and what could not be verified without the real API.
"""

from __future__ import annotations

from bridge.config import DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED
from bridge.platforms.base import Platform, lazy
from bridge.platforms.threads.account import ThreadsAccount

HERE = __name__

PLATFORM = Platform(
    name="threads",
    title="Threads",
    account_model=ThreadsAccount,
    credential="access_token",
    credential_noun="a long-lived Threads access token",
    make_target=lazy(f"{HERE}.target", "make_target"),
    payload=lazy(f"{HERE}.payload", "payload"),
    describe=lazy(f"{HERE}.payload", "describe"),
    default_templates=(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_UNTITLED),
    max_images=1,  # an IMAGE container names one public image URL; Meta fetches it
    uses_article_page=lazy(f"{HERE}.payload", "uses_article_page"),
    doctor_details=lazy(f"{HERE}.status", "doctor_details"),
    status=lazy(f"{HERE}.status", "account_status"),
    status_text=lazy(f"{HERE}.status", "status_text"),
    held_posts_fix=lazy(f"{HERE}.status", "held_posts_fix"),
    login=lazy(f"{HERE}.login", "command"),
    reactions=lazy(f"{HERE}.reactions", "gather"),  # the way back: the conversation and the insights
    reactions_credential=lazy(f"{HERE}.tokens", "kept_token"),  # read with the token posting keeps refreshed
    credential_expires=lazy(f"{HERE}.tokens", "credential_expires"),
)
