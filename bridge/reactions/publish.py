"""What bridge writes for the writer's site: the syndication file ([bridge] syndication_file) and, in
[bridge] comments_dir, a comments document and a no-JavaScript fragment per permalink plus the widget's
JavaScript and CSS. Read from the state alone: no network; safe to run at any time, any number of times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources

from bridge.config import Config
from bridge.reactions.document import PostReactions, build_document, render_fragment
from bridge.reactions.files import document_name, write_if_changed
from bridge.reactions.model import Counts, Reply
from bridge.state import DeliveryRow, State

WIDGET_FILES = ("bridge-comments.js", "bridge-comments.css")


@dataclass
class Published:
    written: list[str] = field(default_factory=list)  # paths of files whose content changed
    documents: int = 0


def platform_of(config: Config, delivery: DeliveryRow) -> str:
    """The delivery's platform: its account's type, or "unknown" for an account since removed from the config
    (its posts stay listed; what network they are on is no longer known)."""
    settings = config.accounts.get(delivery.account)
    return settings.type if settings is not None else "unknown"


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if timestamp else None


def syndication_data(config: Config, state: State, feed: str | None = None) -> dict[str, dict]:
    """permalink -> its feed, title, remote posts and (with comments_dir) its comments files' names."""
    out: dict[str, dict] = {}
    titles: dict[int, str] = {}
    for delivery in state.syndicated_deliveries(feed):
        if not delivery.link:
            continue
        item = out.get(delivery.link)
        if item is None:
            if delivery.entry_id not in titles:
                titles[delivery.entry_id] = state.get_entry(delivery.entry_id)[1].title
            item = out[delivery.link] = {"feed": delivery.feed, "title": titles[delivery.entry_id], "posts": []}
            if config.comments_path() is not None:
                name = document_name(delivery.link)
                item["comments"] = {"json": f"{name}.json", "html": f"{name}.html"}
        item["posts"].append({"platform": platform_of(config, delivery), "account": delivery.account,
                              "url": delivery.remote_url, "id": delivery.remote_id,
                              "posted_at": _iso(delivery.posted_at)})
    return out


def _dump(data) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False) + "\n").encode("utf-8")


def publish_syndication(config: Config, state: State) -> Published:
    report = Published()
    path = config.syndication_path()
    if path is not None and write_if_changed(path, _dump(syndication_data(config, state))):
        report.written.append(str(path))
    return report


def comments_documents(config: Config, state: State, *, entry_link: str | None = None) -> dict[str, dict]:
    """permalink -> its comments document, for every syndicated permalink (or the one asked for)."""
    threads = {row["delivery_id"]: row for row in state.reaction_threads(entry_link=entry_link)}
    posts: dict[str, list[PostReactions]] = {}
    for delivery in state.syndicated_deliveries():
        if not delivery.link or (entry_link is not None and delivery.link != entry_link):
            continue
        thread = threads.get(delivery.id)
        if thread is not None and thread["gone"]:
            posts.setdefault(delivery.link, [])  # the permalink's document stays, emptied of the deleted post
            continue  # no "reply on" link to a post that is not there
        post = PostReactions(platform=platform_of(config, delivery), url=delivery.remote_url,
                             root_id=delivery.remote_id or "")
        if thread is not None and thread["counts"] is not None:
            post.url = thread["root_url"] or post.url
            post.counts = Counts.from_dict(thread["counts"])
            post.replies = [Reply.from_dict(reply) for reply in thread["replies"]]
            post.platform_hidden = frozenset(thread["hidden_ids"])
            post.gathered_at = thread["gathered_at"]
        posts.setdefault(delivery.link, []).append(post)
    hidden, blocked = state.hidden_reply_urls(), state.blocked_authors()
    return {link: build_document(link, items, hidden_urls=hidden, blocked=blocked) for link, items in posts.items()}


def publish_comments(config: Config, state: State) -> Published:
    report = Published()
    folder = config.comments_path()
    if folder is None:
        return report
    for name in WIDGET_FILES:
        data = resources.files("bridge.reactions").joinpath("widget", name).read_bytes()
        if write_if_changed(folder / name, data):
            report.written.append(str(folder / name))
    for link, document in comments_documents(config, state).items():
        name = document_name(link)
        report.documents += 1
        for path, data in ((folder / f"{name}.json", _dump(document)),
                           (folder / f"{name}.html", render_fragment(document).encode("utf-8"))):
            if write_if_changed(path, data):
                report.written.append(str(path))
    return report


def publish_all(config: Config, state: State) -> Published:
    report = publish_syndication(config, state)
    comments = publish_comments(config, state)
    report.written += comments.written
    report.documents = comments.documents
    return report
