"""Composing a delivery's payload: the network-derived inputs first (link preview, thumbnail), then the pure
render -> payload steps. The engine stores the result before the first publish attempt, so a retry sends
exactly the same post.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable

import httpx

from bridge import __version__
from bridge.config import Config, FeedConfig, PostSettings
from bridge.errors import PermanentPublishError
from bridge.faults import crash_point
from bridge.linkpreview import LinkPreviewError, Thumbnail, fetch_link_preview, fetch_thumbnail
from bridge.model import Entry
from bridge.platforms import platform
from bridge.platforms.base import PayloadInputs
from bridge.render import render_post
from bridge.render.fit import RenderError
from bridge.unexpected import unexpected

log = logging.getLogger("bridge.compose")


class Composer:
    def __init__(self, config: Config, state, *, clock: Callable[[], float] | None = None,
                 client: httpx.Client | None = None, fetch_previews: bool = True) -> None:
        self.config = config
        self.state = state
        self.clock = clock
        self.fetch_previews = fetch_previews
        self.client = client or httpx.Client(
            headers={"User-Agent": config.bridge.user_agent.replace("{version}", __version__)},
            timeout=httpx.Timeout(config.bridge.read_timeout, connect=config.bridge.connect_timeout),
        )

    @property
    def allow_private(self) -> bool:
        return self.config.bridge.allow_private_addresses

    def close(self) -> None:
        self.client.close()

    def settings_for(self, feed_name: str, account: str) -> tuple[FeedConfig | None, PostSettings]:
        feed = next((f for f in self.config.feeds if f.name == feed_name), None)
        if feed is None:  # the feed left the config after its entry was queued: post with the account's settings
            feed = FeedConfig(name=feed_name, url="https://removed.invalid/", accounts=[account])
        return feed, self.config.post_settings(feed, account)

    def payload(self, delivery, target, strict: bool = False) -> dict:
        """The payload for one queued delivery (the engine's payload_builder); `strict` after the server refused
        the post as too long (the target's limits read anew, counted the strictest way)."""
        feed_name, entry, _ = self.state.get_entry(delivery.entry_id)
        feed_row = self.state.get_feed(feed_name)
        _, settings = self.settings_for(feed_name, delivery.account)
        account = self.config.accounts.get(delivery.account)
        if account is not None and delivery.kind == "update" and not self.state.thread_parts(delivery.id):
            # an edit of a single post stays one post: a thread's replies cannot follow an edit
            account = account.model_copy(update={"thread_long_notes": False})
        payload = self.compose(entry, settings, target.platform, feed_title=(feed_row.title if feed_row else "") or "",
                               server_limits=target.render_limits(strict=strict), account=account)
        seal = getattr(target, "seal_payload", None)  # only where the credential finishes it (Nostr signs)
        if seal is not None:
            payload = seal(payload)
        crash_point("mid-render")
        return payload

    def compose(self, entry: Entry, settings: PostSettings, platform_name: str, *, feed_title: str = "",
                server_limits: dict | None = None, account=None) -> dict:
        chosen = platform(platform_name)
        # The article page is read only for a payload that uses it (a card bridge makes, a picture it attaches):
        # a server that builds its own card reads the page itself, and the writer's site is spared the request.
        uses_page = chosen.uses_article_page is not None and chosen.uses_article_page(settings, account)
        preview = self.preview(entry) if uses_page else None
        try:
            post = render_post(entry, settings, feed_title=feed_title, preview=preview)
        except RenderError as exc:
            raise PermanentPublishError(f"cannot make a post of {entry.key}: {exc}") from None
        created = datetime.fromtimestamp(self.clock(), timezone.utc) if self.clock else datetime.now(timezone.utc)
        inputs = PayloadInputs(server_limits=server_limits, created_at=created, thumbnail=self.thumbnail, account=account,
                               entry=entry)
        return chosen.payload(post, settings, inputs)

    def preview(self, entry: Entry):
        page = entry.target or entry.link  # a link post's card shows the article it points at
        if not page or not self.fetch_previews:
            return None
        # With the entry as fallback a page that cannot be had gives the feed's own data; so does a page that
        # trips an unexpected error: the post goes out with the card the feed alone makes.
        try:
            return fetch_link_preview(page, client=self.client, allow_private=self.allow_private, fallback=entry)
        except Exception as exc:
            log.warning("no link preview from %s: %s; the post uses the feed's own data", page,
                        unexpected(log, exc, f"reading the page {page}"))
            return None

    def thumbnail(self, image_url: str) -> Thumbnail | None:
        try:
            return fetch_thumbnail(image_url, client=self.client, allow_private=self.allow_private)
        except LinkPreviewError as exc:
            log.info("no card image from %s: %s; the card goes out without one", image_url, exc)
            return None
        except Exception as exc:
            log.warning("no card image from %s: %s; the card goes out without one", image_url,
                        unexpected(log, exc, f"making a thumbnail of {image_url}"))
            return None

    def fetch_image(self, url: str) -> Thumbnail:
        """For targets uploading an image they were told about in a payload."""
        return fetch_thumbnail(url, client=self.client, allow_private=self.allow_private)


