"""The comments document of one permalink (schema "bridge.comments/1", docs/reactions.md) and its no-JavaScript
fragment. Pure: state rows in, a dict and an HTML string out.

Every string from a reply passes bridge.reactions.sanitize here, once. The fragment is built as elements
(xml.etree) and serialized, so every text and attribute is escaped by construction, never by hand.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone

from bridge.reactions import sanitize
from bridge.reactions.conversation import Node, count_nodes, shown_tree
from bridge.reactions.model import Counts, Reply

SCHEMA = "bridge.comments/1"
MAX_REPLIES = 500  # per document: past this the oldest are kept (a page with thousands is unreadable anyway)


@dataclass
class PostReactions:
    """One remote post of the permalink and what was read of it (nothing yet: `counts` None)."""

    platform: str
    url: str | None
    root_id: str
    counts: Counts | None = None
    replies: list[Reply] = field(default_factory=list)
    platform_hidden: frozenset[str] = frozenset()
    gathered_at: float | None = None


def platform_name(name: str) -> str:
    """How the page names a platform ("Mastodon"): its registry title; a name no platform has any more, capitalized."""
    from bridge.platforms import platform

    try:
        return platform(name).title
    except KeyError:
        return name.capitalize()


def build_document(permalink: str, posts: list[PostReactions], *, hidden_urls: set[str],
                   blocked: set[str]) -> dict:
    total = {"likes": 0, "reposts": 0, "quotes": None, "replies": 0}
    shown_posts, trees = [], []
    for post in posts:
        tree = shown_tree(post.root_id, post.replies, platform_hidden=post.platform_hidden,
                          hidden_urls=hidden_urls, blocked=blocked)
        counts = post.counts or Counts()
        shown = count_nodes(tree)
        total["likes"] += counts.likes
        total["reposts"] += counts.reposts
        if counts.quotes is not None:
            total["quotes"] = (total["quotes"] or 0) + counts.quotes
        total["replies"] += shown
        shown_posts.append({
            "platform": post.platform,
            "platform_name": platform_name(post.platform),
            "url": sanitize.safe_url(post.url),
            "counts": {"likes": counts.likes, "reposts": counts.reposts, "quotes": counts.quotes, "replies": shown},
        })
        trees.extend(tree)
    trees.sort(key=lambda node: (node.reply.created_at, node.reply.remote_id))
    budget = [MAX_REPLIES]
    gathered = [post.gathered_at for post in posts if post.gathered_at is not None]
    return {
        "schema": SCHEMA,
        "permalink": permalink,
        "updated_at": _iso(max(gathered)) if gathered else None,
        "counts": total,
        "posts": shown_posts,
        "replies": _nodes(trees, budget),
    }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _nodes(nodes: list[Node], budget: list[int]) -> list[dict]:
    out = []
    for node in nodes:
        if budget[0] <= 0:
            break
        budget[0] -= 1
        out.append({**_reply(node.reply), "replies": _nodes(node.children, budget)})
    return out


def _reply(reply: Reply) -> dict:
    author = reply.author
    handle = sanitize.clean_text(author.handle, sanitize.MAX_HANDLE)
    text = sanitize.clean_text(reply.text)
    html = sanitize.clean_html(reply.content_html)
    return {
        "id": f"{reply.platform}:{sanitize.clean_text(reply.remote_id, sanitize.MAX_URL)}",
        "platform": reply.platform,
        "url": sanitize.safe_url(reply.url),
        "author": {
            "name": sanitize.clean_text(author.name, sanitize.MAX_NAME) or handle,
            "handle": handle,
            "url": sanitize.safe_url(author.profile_url),
            "avatar": sanitize.safe_url(author.avatar_url, https_only=True),
        },
        "created_at": sanitize.clean_text(reply.created_at, 40),
        "language": sanitize.clean_language(reply.language),
        "text": text,
        "html": html,
    }


# --- the no-JavaScript fragment -----------------------------------------------------------------------------


def render_fragment(document: dict) -> str:
    """A plain list of links: every reply as its author, a link to it, and its text; the posts to reply to."""
    section = ET.Element("section", {"class": "bridge-comments", "aria-label": "Replies from the fediverse and Bluesky"})
    ET.SubElement(section, "h2").text = "Replies"
    counts = document["counts"]
    ET.SubElement(section, "p", {"class": "bridge-comments-counts"}).text = counts_line(counts)
    if document["posts"]:
        links = ET.SubElement(section, "ul", {"class": "bridge-comments-posts"})
        for post in document["posts"]:
            if post["url"]:
                item = ET.SubElement(links, "li")
                ET.SubElement(item, "a", {"href": post["url"]}).text = f"Reply on {post['platform_name']}"
    if document["replies"]:
        _fragment_list(section, document["replies"])
    else:
        ET.SubElement(section, "p", {"class": "bridge-comments-none"}).text = "No replies yet."
    return ET.tostring(section, encoding="unicode", method="html") + "\n"


def _fragment_list(parent: ET.Element, replies: list[dict]) -> None:
    listing = ET.SubElement(parent, "ol", {"class": "bridge-comments-list"})
    for reply in replies:
        item = ET.SubElement(listing, "li", {"lang": reply["language"]} if reply["language"] else {})
        who = f"{reply['author']['name']} (@{reply['author']['handle']})"
        if reply["url"]:
            ET.SubElement(item, "a", {"href": reply["url"]}).text = who
        else:
            ET.SubElement(item, "span").text = who
        ET.SubElement(item, "p").text = reply["text"]
        if reply["replies"]:
            _fragment_list(item, reply["replies"])


def counts_line(counts: dict) -> str:
    parts = [_plural(counts["likes"], "like"), _plural(counts["reposts"], "repost")]
    if counts.get("quotes"):
        parts.append(_plural(counts["quotes"], "quote"))
    parts.append(_plural(counts["replies"], "reply", "replies"))
    return " · ".join(parts)


def _plural(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else (many or one + 's')}"
