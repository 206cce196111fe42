"""Reading a Mastodon status's reactions back: GET /api/v1/statuses/:id (counts) and /context (the replies).

Two requests per read. They go with the account's token when it may read statuses (the server then also
applies the writer's own mutes and blocks, and returns up to 4,096 descendants instead of 60), else without
one: public and unlisted replies are public.

What is kept: descendants whose visibility is public or unlisted -- a token sees followers-only and direct
replies too, and those never leave the server -- by authors without `noindex: true` (Mastodon's "exclude my
posts from search and from being indexed"): theirs are not kept either (nor shown: the answers below them lose
their parent, and the core leaves them out). A deleted status is a 404: RemotePostGone. Counts:
favourites_count, reblogs_count, quotes_count where the server has it (Mastodon 4.5+), replies_count.
Takahē's context holds at most 50 descendants, needs a token (scope `read`) and has no `noindex`.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from bridge.config import AccountConfig, Secret
from bridge.deadline import DeadlineTransport
from bridge.errors import ReactionsError, ReactionsRateLimited, RemotePostGone
from bridge.feeds.htmltools import html_to_text
from bridge.reactions.gatherer import HttpOptions
from bridge.reactions.model import SHOWN_VISIBILITIES, Author, Counts, Reply, Thread
from bridge.state import DeliveryRow

PLATFORM = "mastodon"
_BREAKS = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.IGNORECASE)


def gather(settings: AccountConfig, secret: Secret | None, delivery: DeliveryRow, *, deadline: float,
           http: HttpOptions) -> Thread:
    status_id = delivery.remote_id
    if not status_id:
        raise RemotePostGone("the delivery has no remote status id")
    base = settings.instance_url
    with _client(base, secret, deadline, http) as client:
        status = _get(client, f"/api/v1/statuses/{status_id}", deadline)
        context = _get(client, f"/api/v1/statuses/{status_id}/context", deadline)
    if not isinstance(status, dict) or not isinstance(context, dict):
        raise ReactionsError(f"{base} answered with something that is not a status and its context")
    replies = [reply for item in context.get("descendants") or [] if (reply := _reply(item)) is not None]
    return Thread(root_id=str(status_id), root_url=status.get("url") or delivery.remote_url,
                  counts=_counts(status), replies=replies)


def _client(base: str, secret: Secret | None, deadline: float, http: HttpOptions) -> httpx.Client:
    headers = {"User-Agent": http.user_agent, "Accept": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret.reveal()}"
    seconds = max(deadline - time.monotonic(), 0.1)
    return httpx.Client(base_url=base, headers=headers, transport=DeadlineTransport(seconds), follow_redirects=False,
                        timeout=httpx.Timeout(http.read_timeout, connect=http.connect_timeout))


def _get(client: httpx.Client, path: str, deadline: float):
    if time.monotonic() >= deadline:
        raise ReactionsError("out of time before reading " + path)
    try:
        response = client.get(path)
        if response.status_code in (401, 403) and "Authorization" in client.headers:
            # A token without the read scope (or revoked): public replies are readable without one.
            del client.headers["Authorization"]
            response = client.get(path)
    except httpx.TimeoutException:
        raise ReactionsError(f"{client.base_url} did not answer {path} in time") from None
    except httpx.HTTPError as exc:
        raise ReactionsError(f"cannot reach {client.base_url}: {type(exc).__name__}") from None
    if response.status_code in (404, 410):
        raise RemotePostGone(f"{path}: HTTP {response.status_code}, the status was deleted")
    if response.status_code == 429:
        raise ReactionsRateLimited(f"{path}: HTTP 429, rate limited", _reset_at(response))
    if response.status_code != 200:
        raise ReactionsError(f"{path}: HTTP {response.status_code} from {client.base_url}")
    try:
        return response.json()
    except ValueError:
        raise ReactionsError(f"{path}: {client.base_url} answered with something that is not JSON") from None


def _reset_at(response: httpx.Response) -> float | None:
    """X-RateLimit-Reset (ISO 8601) or Retry-After (seconds or an HTTP date), as UNIX seconds."""
    from datetime import datetime

    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            return datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    after = response.headers.get("retry-after")
    if after:
        if after.strip().isdigit():
            return time.time() + int(after)
        try:
            return parsedate_to_datetime(after).timestamp()
        except (TypeError, ValueError):
            pass
    return None


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _counts(status: dict) -> Counts:
    quotes = status.get("quotes_count")
    return Counts(likes=_count(status.get("favourites_count")), reposts=_count(status.get("reblogs_count")),
                  quotes=_count(quotes) if quotes is not None else None, replies=_count(status.get("replies_count")))


def _reply(item) -> Reply | None:
    if not isinstance(item, dict) or item.get("visibility") not in SHOWN_VISIBILITIES:
        return None
    account = item.get("account")
    if not isinstance(account, dict) or not item.get("id") or account.get("noindex") is True:
        return None  # an author who asked not to be indexed: not even kept in the state
    content = item.get("content") if isinstance(item.get("content"), str) else ""
    return Reply(
        platform=PLATFORM,
        remote_id=str(item["id"]),
        url=item.get("url") or item.get("uri"),
        author=_author(account),
        created_at=str(item.get("created_at") or ""),
        parent_id=str(item["in_reply_to_id"]) if item.get("in_reply_to_id") else None,
        text=_text(content),
        content_html=content,
        language=item.get("language"),
        visibility=item["visibility"],
    )


def _author(account: dict) -> Author:
    acct = str(account.get("acct") or account.get("username") or "")
    if "@" not in acct:  # a local account: acct is the bare username
        host = urlsplit(str(account.get("url") or "")).hostname
        acct = f"{acct}@{host}" if host else acct
    return Author(handle=acct, name=str(account.get("display_name") or account.get("username") or ""),
                  avatar_url=account.get("avatar_static") or account.get("avatar"),
                  profile_url=account.get("url"), id=str(account.get("id") or "") or None)


def _text(content: str) -> str:
    """Mastodon's HTML as plain text, a line per paragraph or line break."""
    return "\n".join(line for line in (html_to_text(part) for part in _BREAKS.split(content)) if line)
