"""Reading a Threads post's reactions back: its conversation (every reply, any depth) and its insights (counts).

Meta's reference, read December 2026:
- GET /{media-id}/conversation: "a paginated and flattened list of all top-level and nested replies", fields
  id, text, username, permalink, timestamp, root_post, replied_to, is_reply, hide_status (NOT_HUSHED, UNHUSHED,
  HIDDEN, COVERED, BLOCKED, RESTRICTED), parameter `reverse`, cursors `before`/`after`
  (https://developers.facebook.com/docs/threads/retrieve-and-manage-replies/replies-and-conversations,
  https://developers.facebook.com/documentation/threads/reference/reply-management). `username` and `permalink`
  "only work for public users and your own user": a reply without a username is a private profile's, not kept.
- GET /{media-id}/insights?metric=likes,replies,reposts,quotes: {"data": [{"name", "period", "values": [{"value"}],
  ...}]}; it needs the `threads_manage_insights` permission (https://developers.facebook.com/docs/threads/insights).
  A token without it still reads the replies: the counts stay at bridge's defaults and the reason is logged once
  per account.

Authors: Threads gives a profile picture (`threads_profile_picture_url`) only for the token's own user, so replies
show no avatar; the profile is https://www.threads.net/@username, the reply's own address its `permalink`.
A hidden reply (anything but NOT_HUSHED / UNHUSHED) is handed back in `hidden_ids`: the core never shows it nor
the replies below it. A deleted post is Meta's code 100 / subcode 33 ("Object ... does not exist"): RemotePostGone.
Throttling (codes 4, 17, 32, 613) is ReactionsRateLimited with the time Meta gives.
Requests per read: one for the insights, one per conversation page (Graph API cursor paging: `after` while the
answer has a `next`, https://developers.facebook.com/docs/graph-api/results; Meta does not document the page size;
bridge follows at most MAX_PAGES).
"""

from __future__ import annotations

import logging
import time

from bridge.config import AccountConfig, Secret
from bridge.errors import (AuthError, PublishError, RateLimited, ReactionsError, ReactionsRateLimited,
                           RemotePostGone)
from bridge.platforms.threads.graph import PERMISSION_CODES, Graph
from bridge.reactions.gatherer import HttpOptions
from bridge.reactions.model import Author, Counts, Reply, Thread
from bridge.state import DeliveryRow

log = logging.getLogger("bridge.threads")

PLATFORM = "threads"
PROFILE_URL = "https://www.threads.net/@{}"
REPLY_FIELDS = "id,text,username,permalink,timestamp,root_post,replied_to,is_reply,hide_status"
METRICS = "likes,replies,reposts,quotes"
SHOWN = frozenset({"NOT_HUSHED", "UNHUSHED"})  # every other hide_status is a reply kept out of sight
MAX_PAGES = 10
GONE_SUBCODE = 33
_told_no_insights: set[str] = set()  # accounts whose missing permission was already said


def gather(settings: AccountConfig, secret: Secret | None, delivery: DeliveryRow, *, deadline: float,
           http: HttpOptions) -> Thread:
    media_id = delivery.remote_id
    if not media_id:
        raise RemotePostGone("the delivery has no Threads media id")
    if secret is None:
        raise ReactionsError("no Threads access token: replies and counts need one")
    graph = Graph(settings.server_url, delivery.account, user_agent=http.user_agent,
                  connect_timeout=http.connect_timeout, read_timeout=http.read_timeout,
                  total_timeout=max(deadline - time.monotonic(), 0.1), clock=time.time)  # no request outlives the read
    try:
        items = _conversation(graph, secret, media_id, deadline)
        counts = _counts(graph, secret, media_id, delivery.account, deadline)
    finally:
        graph.close()
    replies, hidden = [], set()
    for item in items:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        if item.get("hide_status", "NOT_HUSHED") not in SHOWN:  # absent: nobody hid it
            hidden.add(str(item["id"]))
        elif (reply := _reply(item, media_id)) is not None:
            replies.append(reply)
    if counts is None:
        counts = Counts(replies=len(replies))
    return Thread(root_id=str(media_id), root_url=delivery.remote_url, counts=counts, replies=replies,
                  hidden_ids=frozenset(hidden))


def _call(graph: Graph, secret: Secret, path: str, params: dict, deadline: float) -> dict:
    if time.monotonic() >= deadline:
        raise ReactionsError(f"out of time before reading {path}")
    try:
        return graph.call("GET", path, {**params, "access_token": secret.reveal()})
    except RateLimited as exc:
        retry = exc.retry_at.timestamp() if getattr(exc, "retry_at", None) else None
        raise ReactionsRateLimited(f"Threads is limiting calls ({path}): {exc}", retry) from None
    except AuthError:
        raise
    except PublishError as exc:  # the rest of Graph's tree, Meta's words in it ("... (code 100, subcode 33)")
        if f"code 100, subcode {GONE_SUBCODE}" in str(exc):
            raise RemotePostGone(f"{path}: the Threads post was deleted") from None
        raise ReactionsError(f"{path}: {exc}") from None


def _conversation(graph: Graph, secret: Secret, media_id: str, deadline: float) -> list:
    params = {"fields": REPLY_FIELDS, "reverse": "false"}
    items: list = []
    for _ in range(MAX_PAGES):
        try:
            page = _call(graph, secret, f"{media_id}/conversation", params, deadline)
        except AuthError as exc:
            raise ReactionsError(f"the Threads token cannot read the replies: {exc}") from None
        data = page.get("data")
        if not isinstance(data, list):
            raise ReactionsError("Threads answered the conversation with something that is not a list of replies")
        items += data
        paging = page.get("paging") if isinstance(page.get("paging"), dict) else {}
        after = (paging.get("cursors") or {}).get("after")
        if not data or not after or not paging.get("next"):
            break
        params = {**params, "after": after}
    return items


def _counts(graph: Graph, secret: Secret, media_id: str, account: str, deadline: float) -> Counts | None:
    try:
        answer = _call(graph, secret, f"{media_id}/insights", {"metric": METRICS}, deadline)
    except AuthError as exc:
        if any(f"code {code}" in str(exc) for code in PERMISSION_CODES) or "lacks a permission" in str(exc):
            if account not in _told_no_insights:
                _told_no_insights.add(account)
                log.warning("%s: Threads counts (likes, reposts, quotes) are not read: the token lacks the "
                            "threads_manage_insights permission; run `bridge login threads` again to grant it. "
                            "Replies are still read.", account)
            return None
        raise ReactionsError(f"the Threads token cannot read the counts: {exc}") from None
    values = {}
    for metric in answer.get("data") or []:
        if isinstance(metric, dict) and isinstance(metric.get("values"), list) and metric["values"]:
            value = metric["values"][0].get("value") if isinstance(metric["values"][0], dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                values[metric.get("name")] = value
    return Counts(likes=values.get("likes", 0), reposts=values.get("reposts", 0), quotes=values.get("quotes"),
                  replies=values.get("replies", 0))


def _reply(item: dict, media_id: str) -> Reply | None:
    username = item.get("username")
    if not isinstance(username, str) or not username:
        return None  # Meta names only public users: a private profile's reply is not public
    parent = item.get("replied_to") if isinstance(item.get("replied_to"), dict) else {}
    return Reply(
        platform=PLATFORM,
        remote_id=str(item["id"]),
        url=item.get("permalink") if isinstance(item.get("permalink"), str) else None,
        author=Author(handle=username, name=username, avatar_url=None, profile_url=PROFILE_URL.format(username)),
        created_at=str(item.get("timestamp") or ""),
        parent_id=str(parent.get("id") or media_id),
        text=item.get("text") if isinstance(item.get("text"), str) else "",
    )
