"""Reading a Bluesky post's reactions back: its thread and counts, from an AppView (bridge.reactions.gatherer).

One unauthenticated app.bsky.feed.getPostThread per refresh, to the account's `appview` (default
https://public.api.bsky.app, Bluesky's public read endpoint: no session, so no login is spent and nothing
needs the app password). It answers the whole reply tree and the post's counts (likes, reposts, quotes,
replies) in one response.

Respecting people:
- Replies the writer hid (their threadgate's `hiddenReplies`) are left out with everything below them, and
  their ids reported in Thread.hidden_ids. Replies a threadgate refused are never in the AppView's answer.
- Blocked and deleted nodes (#blockedPost, #notFoundPost) are skipped with what is below them: the AppView
  does not say what they were.
- An author who asked apps not to show them to logged-out people (the `!no-unauthenticated` label, usually
  a self-label on their profile) comes back as a bare placeholder with `noindex = True`: no name, handle,
  avatar or text is kept, only the place in the tree (so replies below it keep their parent).

Text is the record's plain text; `content_html` is that text escaped, with the record's link facets as links
(http/https only), mentions and hashtags as links to bsky.app. It is untrusted either way: the comments
document is sanitized when written (bridge.reactions).
"""

from __future__ import annotations

import html
import time
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import httpx
from atproto_client import Client, models
from atproto_client.exceptions import BadRequestError, RateLimitExceededError, RequestErrorBase
from atproto_client.request import Request

from bridge.config import AccountConfig, Secret
from bridge.deadline import DeadlineTransport
from bridge.errors import ReactionsError, ReactionsRateLimited, RemotePostGone
from bridge.reactions.gatherer import HttpOptions
from bridge.reactions.model import Author, Counts, Reply, Thread
from bridge.state import DeliveryRow

PLATFORM = "bluesky"
GET_POST_THREAD = "app.bsky.feed.getPostThread"
# The lexicon's maximum: the whole public tree in one answer (a thread of a blog post is rarely deep).
THREAD_DEPTH = 1000
THREAD_VIEW = "app.bsky.feed.defs#threadViewPost"
NO_UNAUTHENTICATED = "!no-unauthenticated"
WEB = "https://bsky.app"
POST_NOT_FOUND = frozenset({"NotFound"})


def gather(settings: AccountConfig, secret: Secret | None, delivery: DeliveryRow, *, deadline: float,
           http: HttpOptions) -> Thread:
    """The post's Thread as the account's AppView shows it to a logged-out reader."""
    uri = delivery.remote_id
    if not uri or not uri.startswith("at://"):
        raise ReactionsError(f"delivery {delivery.id} has no at:// URI to read reactions from (remote id {uri!r})")
    root = _thread_view(_fetch_thread(settings.appview_url, uri, deadline, http), uri)
    post = root["post"]
    hidden = frozenset(_hidden_replies(post))
    replies: list[Reply] = []
    _collect(root, hidden, replies)
    return Thread(root_id=uri, root_url=delivery.remote_url or _post_url(post), counts=_counts(post),
                  replies=replies, hidden_ids=hidden)


# --- the request ---------------------------------------------------------------------------------------------


def _fetch_thread(appview: str, uri: str, deadline: float, http: HttpOptions) -> dict:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ReactionsError(f"no time left to read the thread of {uri} from {appview}")
    request = Request(timeout=httpx.Timeout(http.read_timeout, connect=http.connect_timeout),
                      transport=DeadlineTransport(remaining))
    request.set_additional_headers({"User-Agent": http.user_agent})
    client = Client(base_url=appview, request=request)
    params = models.AppBskyFeedGetPostThread.Params(uri=uri, depth=THREAD_DEPTH, parent_height=0)
    try:
        response = client.invoke_query(GET_POST_THREAD, params=params)
    except RateLimitExceededError as exc:
        retry_at = exc.reset_at.timestamp() if exc.reset_at else (
            time.time() + exc.retry_after if exc.retry_after is not None else None)
        raise ReactionsRateLimited(f"{appview} rate limit reached reading {uri}", retry_at=retry_at) from None
    except BadRequestError as exc:
        if _error_name(exc) in POST_NOT_FOUND:
            raise RemotePostGone(f"{uri} no longer exists ({appview}: {_describe(exc)})") from None
        raise ReactionsError(f"{appview} refused to read {uri}: {_describe(exc)}") from None
    except (RequestErrorBase, httpx.HTTPError) as exc:
        raise ReactionsError(f"{appview} could not be read for {uri}: {_describe(exc)}") from None
    except ValueError as exc:  # the SDK parsing a body that is not JSON (or was cut off by the deadline)
        raise ReactionsError(f"{appview} answered {GET_POST_THREAD} for {uri} unreadably: {exc}") from None
    finally:
        request.close()
    if not isinstance(response.content, dict) or not isinstance(response.content.get("thread"), dict):
        raise ReactionsError(f"{appview} answered {GET_POST_THREAD} for {uri} without a thread")
    return response.content["thread"]


def _error_name(exc: RequestErrorBase) -> str | None:
    content = getattr(getattr(exc, "response", None), "content", None)
    return getattr(content, "error", None)


def _describe(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        content = response.content
        name, message = getattr(content, "error", None), getattr(content, "message", None)
        detail = ": ".join(str(part) for part in (name, message) if part)
        return f"HTTP {response.status_code}" + (f" {detail}" if detail else "")
    cause = exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


def _thread_view(thread: dict, uri: str) -> dict:
    kind = thread.get("$type")
    if kind == THREAD_VIEW and isinstance(thread.get("post"), dict):
        return thread
    if kind == "app.bsky.feed.defs#notFoundPost":
        raise RemotePostGone(f"{uri} no longer exists (the AppView answers notFoundPost)")
    raise ReactionsError(f"the AppView does not show {uri} ({kind or 'no $type'})")


# --- the tree --------------------------------------------------------------------------------------------------


def _hidden_replies(post: dict) -> list[str]:
    record = (post.get("threadgate") or {}).get("record") or {}
    hidden = record.get("hiddenReplies") or []
    return [uri for uri in hidden if isinstance(uri, str)]


def _collect(root: dict, hidden: frozenset[str], out: list[Reply]) -> None:
    """Flattens the reply tree, parents before children, without recursion (a thread can be deep)."""
    todo = [(child, root["post"]["uri"]) for child in reversed(root.get("replies") or [])]
    while todo:
        node, parent_uri = todo.pop()
        if not isinstance(node, dict) or node.get("$type") != THREAD_VIEW or not isinstance(node.get("post"), dict):
            continue  # blocked or deleted: nothing to show, nor below it
        post = node["post"]
        uri = post.get("uri")
        if not isinstance(uri, str) or uri in hidden:
            continue
        out.append(_reply(post, parent_uri))
        todo.extend((child, uri) for child in reversed(node.get("replies") or []))


def _reply(post: dict, parent_uri: str) -> Reply:
    author = post.get("author") or {}
    record = post.get("record") or {}
    if _asked_not_to_be_shown(author):
        # Only the place in the tree: nothing of theirs is kept, so nothing of theirs can ever be shown.
        return Reply(platform=PLATFORM, remote_id=post["uri"], url=None,
                     author=Author(handle="", noindex=True), created_at=_created_at(post, record),
                     parent_id=parent_uri)
    text = record.get("text") if isinstance(record.get("text"), str) else ""
    langs = record.get("langs")
    return Reply(
        platform=PLATFORM,
        remote_id=post["uri"],
        url=_post_url(post),
        author=_author(author),
        created_at=_created_at(post, record),
        parent_id=parent_uri,
        text=text,
        content_html=_html(text, record.get("facets")),
        language=langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str) else None,
    )


def _asked_not_to_be_shown(author: dict) -> bool:
    return any(isinstance(label, dict) and label.get("val") == NO_UNAUTHENTICATED and not label.get("neg")
               for label in author.get("labels") or [])


def _author(author: dict) -> Author:
    did = author.get("did") if isinstance(author.get("did"), str) else None
    handle = _handle(author)
    avatar = author.get("avatar")
    return Author(handle=handle, name=author.get("displayName") or "",
                  avatar_url=avatar if isinstance(avatar, str) else None,
                  profile_url=f"{WEB}/profile/{quote(handle or did or '', safe=':.')}", id=did)


def _handle(author: dict) -> str:
    """The handle, or the DID when the handle does not resolve ("handle.invalid"): links must still work."""
    handle = author.get("handle")
    if isinstance(handle, str) and handle and handle != "handle.invalid":
        return handle
    return author.get("did") or ""


def _post_url(post: dict) -> str | None:
    uri = post.get("uri") or ""
    rkey = uri.rsplit("/", 1)[-1]
    who = _handle(post.get("author") or {}) or uri.removeprefix("at://").split("/", 1)[0]
    if not rkey or not who:
        return None
    return f"{WEB}/profile/{quote(who, safe=':.')}/post/{quote(rkey, safe='')}"


def _created_at(post: dict, record: dict) -> str:
    for value in (record.get("createdAt"), post.get("indexedAt")):
        if isinstance(value, str) and value:
            return value
    return datetime.now(timezone.utc).isoformat()


def _counts(post: dict) -> Counts:
    def count(name: str) -> int:
        value = post.get(name)
        return value if isinstance(value, int) and value >= 0 else 0
    quotes = post.get("quoteCount")
    return Counts(likes=count("likeCount"), reposts=count("repostCount"),
                  quotes=quotes if isinstance(quotes, int) and quotes >= 0 else None, replies=count("replyCount"))


# --- text to HTML ----------------------------------------------------------------------------------------------


def _html(text: str, facets: object) -> str:
    """The text escaped, with its facets as links. Facets index UTF-8 bytes; a facet that overlaps another,
    falls outside the text or splits a character is ignored (its text stays, unlinked)."""
    data = text.encode("utf-8")
    spans: list[tuple[int, int, str]] = []
    for facet in facets if isinstance(facets, list) else []:
        index = facet.get("index") if isinstance(facet, dict) else None
        start, end = (index or {}).get("byteStart"), (index or {}).get("byteEnd")
        href = _facet_href(facet.get("features") if isinstance(facet, dict) else None)
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data) and href:
            spans.append((start, end, href))
    out, at = [], 0
    for start, end, href in sorted(spans):
        if start < at:
            continue
        try:
            before, label = data[at:start].decode("utf-8"), data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(_escape(before))
        out.append(f'<a href="{html.escape(href)}" rel="nofollow noopener ugc">{_escape(label)}</a>')
        at = end
    out.append(_escape(data[at:].decode("utf-8", "replace")))
    return "".join(out)


def _escape(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _facet_href(features: object) -> str | None:
    for feature in features if isinstance(features, list) else []:
        if not isinstance(feature, dict):
            continue
        kind = feature.get("$type")
        if kind == "app.bsky.richtext.facet#link":
            uri = feature.get("uri")
            if isinstance(uri, str) and urlsplit(uri).scheme.lower() in ("http", "https"):
                return uri
        elif kind == "app.bsky.richtext.facet#mention" and isinstance(feature.get("did"), str):
            return f"{WEB}/profile/{quote(feature['did'], safe=':')}"
        elif kind == "app.bsky.richtext.facet#tag" and isinstance(feature.get("tag"), str):
            return f"{WEB}/hashtag/{quote(feature['tag'], safe='')}"
    return None
