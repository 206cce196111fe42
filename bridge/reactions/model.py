"""What a platform's gatherer hands back: plain, platform-neutral data that round-trips through JSON (state rows,
`bridge reactions --json`, comments documents).

Everything in a Reply came from a stranger: it is untrusted until bridge.reactions.sanitize has been over it,
which happens once, when a comments document is written (so a better sanitizer reaches old replies too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The visibilities a reply may have and still be shown on the writer's blog. Mastodon's "unlisted" is public
# to anyone who looks (only kept out of timelines); "private" (followers-only) and "direct" never leave.
SHOWN_VISIBILITIES = frozenset({"public", "unlisted"})


@dataclass(frozen=True)
class Author:
    handle: str  # "alice@example.social" (Mastodon acct, always with its domain) or "alice.bsky.social"
    name: str = ""  # display name, as the author wrote it (untrusted)
    avatar_url: str | None = None
    profile_url: str | None = None
    id: str | None = None  # the platform's stable id (Mastodon account id, Bluesky DID): handles change
    # The author asked not to be indexed (Mastodon `noindex`, Bluesky `!no-unauthenticated`): never shown.
    noindex: bool = False

    def to_dict(self) -> dict:
        return {"handle": self.handle, "name": self.name, "avatar_url": self.avatar_url,
                "profile_url": self.profile_url, "id": self.id, "noindex": self.noindex}

    @classmethod
    def from_dict(cls, data: dict) -> "Author":
        return cls(**data)


@dataclass(frozen=True)
class Reply:
    platform: str  # "mastodon" | "bluesky" | ...
    remote_id: str  # Mastodon status id, Bluesky at:// URI
    url: str | None  # the reply's own web address
    author: Author
    created_at: str  # ISO 8601, as the platform gave it
    # The remote id of the post this one answers: the syndicated post itself (Thread.root_id) for a direct
    # reply, another Reply's remote_id deeper in the tree.
    parent_id: str | None
    text: str = ""  # plain text (Bluesky's record text; Mastodon's content reduced to text)
    content_html: str = ""  # the platform's HTML, untrusted (Mastodon `content`); "" when it has none
    language: str | None = None
    visibility: str = "public"  # public | unlisted (gatherers drop anything else; the core drops it again)

    def to_dict(self) -> dict:
        return {"platform": self.platform, "remote_id": self.remote_id, "url": self.url,
                "author": self.author.to_dict(), "created_at": self.created_at, "parent_id": self.parent_id,
                "text": self.text, "content_html": self.content_html, "language": self.language,
                "visibility": self.visibility}

    @classmethod
    def from_dict(cls, data: dict) -> "Reply":
        data = dict(data)
        data["author"] = Author.from_dict(data["author"])
        return cls(**data)


@dataclass(frozen=True)
class Counts:
    likes: int = 0  # Mastodon favourites, Bluesky likes
    reposts: int = 0  # Mastodon boosts (reblogs), Bluesky reposts
    quotes: int | None = None  # None: the platform (or this server's version) does not say
    replies: int = 0  # the platform's own count (it may include replies bridge does not show)

    def to_dict(self) -> dict:
        return {"likes": self.likes, "reposts": self.reposts, "quotes": self.quotes, "replies": self.replies}

    @classmethod
    def from_dict(cls, data: dict) -> "Counts":
        return cls(**data)


@dataclass
class Thread:
    """One syndicated post's reactions, as read at one moment."""

    root_id: str  # the syndicated post's remote id (the delivery's remote_id)
    root_url: str | None  # its web address: where "reply on <platform>" links go
    counts: Counts = field(default_factory=Counts)
    replies: list[Reply] = field(default_factory=list)  # the public reply tree, flattened, any order
    # Replies the writer hid on the platform itself (Bluesky hidden replies, replies a threadgate keeps out):
    # never shown, nor anything below them.
    hidden_ids: frozenset[str] = frozenset()
