"""Post -> Mastodon status parameters. Pure.

    {"status": str, "spoiler_text": str, "visibility": "public"|"unlisted"|"private"|"direct",
     "language": "en"|None, "media": [{"url": str, "description": str}]}

The permalink is in the text (the server builds its link card from the first URL, so when the summary holds a URL
the link line moves up before it; a link post gives the linked article first, then "★ permalink"). `media` holds
the post's native pictures (a photo post's, or any entry's image with images = "attach"), at most the instance's
max_media_attachments, each described by its alt text cut to the instance's description_limit; a status with
media shows no link card.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bridge.config import PostSettings
from bridge.platforms.base import PayloadInputs
from bridge.platforms.mastodon.counting import mastodon_length
from bridge.platforms.mastodon.limits import MastodonLimits
from bridge.render import graphemes
from bridge.render.fit import fit, template_fields
from bridge.render.language import mastodon_language
from bridge.render.links import find_urls
from bridge.render.longnote import REPLIES, holds_whole, split_note, thread_options, thread_text
from bridge.render.post import Post, post_parts
from bridge.render.template import RichText, Segment


@dataclass(frozen=True)
class MastodonText:
    """How a Mastodon-API server shows and counts text (the fitter's Platform); `limits` says how it counts."""

    limits: MastodonLimits
    spoiler_text: str = ""

    def url_segments(self, url: str) -> list[Segment]:
        return [Segment(url, link=url)]

    def text_segments(self, text: str) -> list[Segment]:
        return [Segment(text)] if text else []

    def length(self, text: str) -> int:
        return mastodon_length(
            text, characters_per_url=self.limits.characters_reserved_per_url, spoiler_text=self.spoiler_text,
            counting=self.limits.counting, urls_in_full=self.limits.urls_in_full,
        )

    def fits(self, rich: RichText) -> bool:
        return self.length(rich.text) <= self.limits.max_characters


def link_line_first(template: str) -> str:
    """`template` with its {url} line moved up before the summary's line (else the title's), which may hold URLs."""
    if "url" not in template_fields(template):
        template = template.rstrip() + "\n\n{url}"  # where fit() would put it
    lines = template.split("\n")
    link_line = next(i for i, line in enumerate(lines) if "{url}" in line)
    earlier = [i for i in range(link_line) if "{summary}" in lines[i]] or [i for i in range(link_line) if "{title}" in lines[i]]
    if not earlier:
        return template
    first = earlier[0]
    return "\n".join(lines[:first] + [lines[link_line], ""] + lines[first:link_line] + lines[link_line + 1 :])


def mastodon_payload(post: Post, settings: PostSettings, limits: MastodonLimits = MastodonLimits()) -> dict:
    """The status parameters for `post` on an instance with `limits`. Raises RenderError if it cannot fit."""
    spoiler_text = post.content_warning or ""
    platform = MastodonText(limits, spoiler_text)
    rich = fit(post.template, post_parts(post), platform)
    intended = post.target or post.link
    urls = find_urls(rich.text)
    if urls and rich.text[urls[0][0] : urls[0][1]] != intended:
        # The server builds the card from the first URL: a link in the summary ("here (https://…)") would take it.
        rich = fit(link_line_first(post.template), post_parts(post), platform)
    # images = "attach": an article's image too (Bluesky shows it in the card instead)
    attached = post.images or ((post.image,) if settings.images == "attach" and post.image is not None else ())
    media = [{"url": image.url, "description": graphemes.truncate(image.alt, limits.description_limit)}
             for image in attached[: max(limits.max_media_attachments, 0)]]
    return {
        "status": rich.text,
        "spoiler_text": spoiler_text,
        "visibility": post.visibility,
        "language": mastodon_language(post.language),
        "media": media,
    }


def uses_article_page(settings: PostSettings, account) -> bool:
    """Platform.uses_article_page: the server makes the link card from the page itself; bridge reads the page
    only for the picture it attaches with images = "attach" (the page's own picture comes first)."""
    return settings.images == "attach"


def payload(post: Post, settings: PostSettings, inputs: PayloadInputs) -> dict:
    """Platform.payload: the status parameters on the server whose limits the target read (or defaults); for a
    long note on an account with thread_long_notes, its first part's, with the replies under "thread"."""
    limits = MastodonLimits.from_dict(inputs.server_limits)
    text = thread_text(post, inputs.account, inputs.entry)
    pieces = None if text is None else thread_pieces(post, text, limits, **thread_options(inputs.account))
    if pieces is None:
        return mastodon_payload(post, settings, limits)
    root = mastodon_payload(replace(post, summary=pieces[0]), settings, limits)
    replies = [{"status": piece, "spoiler_text": root["spoiler_text"], "visibility": root["visibility"],
                "language": root["language"]} for piece in pieces[1:]]
    return {**root, REPLIES: replies}


def thread_pieces(post: Post, text: str, limits: MastodonLimits, *, numbering: bool, max_parts: int) -> list[str] | None:
    """A long note's parts: the first within the post's template, the replies alone (each with the content
    warning, which counts too); None when it fits one post."""
    platform = MastodonText(limits, post.content_warning or "")
    parts = post_parts(post)
    return split_note(text, lambda piece: holds_whole(post.template, replace(parts, summary=piece), platform),
                      lambda piece: platform.length(piece) <= limits.max_characters,
                      numbering=numbering, max_parts=max_parts)


def describe(payload: dict, server_limits: dict | None) -> tuple[str, list[str]]:
    """Platform.describe, for `bridge preview`: the status and how it counts on the server."""
    limits = MastodonLimits.from_dict(server_limits)
    text = payload["status"]
    used = MastodonText(limits, payload["spoiler_text"]).length(text)
    details = [f"{used}/{limits.max_characters} characters", f"visibility {payload['visibility']}",
               f"language {payload['language'] or 'unset'}"]
    if payload["spoiler_text"]:
        details.append(f"CW: {payload['spoiler_text']}")
    for media in payload["media"]:
        details.append(f"image {media['url']} (alt: {media['description'] or 'none'})")
    for index, reply in enumerate(payload.get(REPLIES) or [], start=2):
        text += f"\n\n--- reply {index} ---\n{reply['status']}"
        details.append(f"reply {index}: {MastodonText(limits, reply['spoiler_text']).length(reply['status'])}/"
                       f"{limits.max_characters} characters")
    return text, details
