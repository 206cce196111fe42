"""The one interface between the engine and a platform (Mastodon, Bluesky, ...).

Everything the engine, the renderer's shared fitting, the config loader, `doctor`, `status`, `preview` and the CLI
know of a platform is a `Platform` (below), found by name in the registry (bridge/platforms/__init__.py). All the
rest — its limits and counting, its payload, its publishing target and SDK, its login, its doctor checks, its
config fields — lives in its own package, bridge/platforms/<name>/. docs/platforms.md tells how to add one.

A platform's package must stay cheap to import: its SDK (Mastodon.py, atproto...) is imported only inside
`make_target` and `login`, so the commands that publish nothing never load it.

A target (one account on one platform) translates its library's errors into bridge.errors' PublishError tree at
its boundary: TransientPublishError / RateLimited (try later), PermanentPublishError (give up on this post; TooLong:
render it once more, strictly), AuthError (pause the account), OutcomeUnknown (hold the post: it may exist and
cannot be looked for).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable, Protocol

from bridge.state import DeliveryRow

if TYPE_CHECKING:  # only for annotations: importing them here would make a cycle with bridge.config
    import click

    from bridge.config import AccountConfig, Config, PostSettings, Secret
    from bridge.doctor import Check
    from bridge.linkpreview.model import Thumbnail
    from bridge.model import Entry
    from bridge.reactions.model import Thread
    from bridge.render.post import Post
    from bridge.state import State


@dataclass(frozen=True)
class Published:
    remote_id: str  # the platform's id of the post (a Mastodon status id, a Bluesky at:// URI, an event id...)
    url: str | None  # the post's web address
    cid: str | None = None  # Bluesky: the record's CID (a reply's strong reference to it needs it)


class Target(Protocol):
    """One account on one platform, as the delivery engine drives it."""

    account: str
    platform: str  # its Platform's name

    def render_limits(self, strict: bool = False) -> dict | None:
        """What the renderer must know about this account's server (Mastodon's instance limits), or None; handed
        to Platform.payload as PayloadInputs.server_limits. `strict`: read anew and counted the strictest way,
        after the server refused a post as too long."""

    def publish(self, delivery: DeliveryRow, payload: dict) -> Published:
        """Post the stored payload, using the delivery's retry identity (its Idempotency-Key, its rkey, or an id
        the payload itself carries) so that a repeat can never make a second post."""

    def find_existing(self, delivery: DeliveryRow) -> Published | None:
        """After an unknown outcome: did this delivery's post get made? None when it surely did not (or a repeat
        is safe); raises OutcomeUnknown when the target cannot tell."""

    def edit(self, delivery: DeliveryRow, payload: dict) -> Published:
        """Replace a posted entry's text; raise PermanentPublishError where the platform cannot."""

    # Optional: `delete(delivery) -> None`, delete the delivery's remote post (deletes that follow the blog,
    # bridge/deletes.py); a post already gone counts as deleted; raises PublishError otherwise.

    # Optional, for a platform with long_note_threads (bridge/notethreads.py posts a thread part by part): the
    # replies of a thread payload's "thread" list. `root` and `parent` are the saved progress records of parts
    # already made ({"remote_id", "url", "cid"}); each reply has its own retry identity (its own Idempotency-Key,
    # its own rkey chosen before the first attempt).
    #   publish_reply(delivery, reply, index, root, parent) -> Published
    #   find_reply(delivery, reply, index, root, parent) -> Published | None   (after an unknown outcome, as
    #       find_existing: None when surely not made; OutcomeUnknown when it cannot tell)
    #   delete_reply(delivery, part) -> None   (a reply already gone counts as deleted)
    #   edit_reply(delivery, part, reply) -> Published   (where the platform edits posts)

    # Optional: `seal_payload(payload) -> dict`, the payload made final with the account's credential before it is
    # stored (Nostr signs its events there: the signed event is then the retry identity, sent again as it is).
    # The engine calls it when the target has it; the payload is stored only afterwards.
    # Optional: `keep_alive()`, for a platform with credential_expires: renew the credential if it is due (Threads
    # refreshes its token once a day old). The engine calls it on passes with nothing to post; raises AuthError
    # when the credential is dead.

    def diagnose(self) -> dict:
        """For `bridge doctor`: log in and read what can be read without posting (account, server, limits...);
        raises a PublishError (AuthError with its fix...) when the account cannot post. Keys `doctor` shows:
        account, handle, did, pds, session, software, version, profile, limits, notes, problems [(problem, fix)]."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class TargetContext:
    """What a platform's make_target gets: one configured account and the bridge-wide settings it needs."""

    account: str  # the account's name in the config
    settings: "AccountConfig"  # the platform's own account model (Platform.account_model)
    secret: "Secret"  # its credential, already resolved (Platform.credential)
    state: "State"  # sessions and cached server facts live here (State.account / set_account_*)
    user_agent: str
    connect_timeout: float
    read_timeout: float
    total_timeout: float  # one request, all of it (bridge.deadline)
    media_fetcher: Callable[[str], "Thumbnail"] | None = None  # fetches an image a payload names, for upload


@dataclass(frozen=True)
class PayloadInputs:
    """What a payload may depend on besides the post and its settings. Fetching stays outside: the payload
    functions are pure but for `thumbnail`, which the caller memoises or stubs."""

    server_limits: dict | None  # Target.render_limits(), or the copy cached in the state (preview); None: defaults
    created_at: datetime  # the moment of composing (a record's createdAt, an event's created_at)
    thumbnail: Callable[[str], "Thumbnail | None"]  # a card image by URL; None when it cannot be had
    # The account's own settings (its Platform.account_model: long_form = true...); None for preview's default
    # accounts, which have no config.
    account: "AccountConfig | None" = None
    entry: "Entry | None" = None  # the entry itself, for a platform that posts the whole article (Nostr's NIP-23)


@dataclass(frozen=True)
class CredentialExpiry:
    """When an account's credential stops working, as bridge last knew it, and how to get a new one."""

    at: float  # UNIX seconds
    fix: str  # the platform's own steps for a new credential (the ones its expired-token error shows)


@dataclass(frozen=True)
class Platform:
    """A platform bridge posts to: one instance per package, listed in bridge.platforms.PLATFORMS."""

    name: str  # the accounts' `type` in the config, the `platform` in `preview --json`, the preview's default account
    title: str  # how messages name it: "Mastodon"
    account_model: type["AccountConfig"]  # its [accounts.NAME] table: bridge.config.AccountConfig + its own fields
    credential: str  # the account model's field naming where the secret lives ("access_token")
    credential_noun: str  # what the secret is called in messages ("an access token")
    make_target: Callable[[TargetContext], Target]  # imports the SDK; may raise ConfigError / PublishError
    payload: Callable[["Post", "PostSettings", PayloadInputs], dict]  # raises RenderError when it cannot fit
    # For `preview`'s text output: (the text as shown, details such as "312/500 characters").
    describe: Callable[[dict, dict | None], tuple[str, list[str]]]
    default_templates: tuple[str, str]  # (titled, untitled) when neither account nor feed sets one
    max_images: int = 0  # the most pictures one post uploads (sizes the daemon's patience with a post)
    # Whether render_limits() reads the server (preview then reads the copy the daemon cached in the state).
    server_limits: bool = False
    # Whether a payload for these settings and this account (its account_model; None for preview's defaults)
    # uses the article page that bridge.linkpreview reads (its title, description and picture): a link card
    # bridge makes itself, a picture it attaches. The page is fetched only for such a payload; a server that
    # builds its own card from the link (Mastodon's) is left to read the page itself. None: never.
    uses_article_page: Callable[["PostSettings", "AccountConfig | None"], bool] | None = None
    # A record key chosen once, when a delivery is queued, and stored in deliveries.rkey (Bluesky's TID: the
    # retry identity). None: the platform's retry identity is the Idempotency-Key or the stored payload itself.
    new_record_key: Callable[[float], str] | None = None
    # `bridge doctor`: what the account's line says beyond the common diagnose() keys (limits, permissions...),
    # and checks beyond "can log in", both from the target's diagnose() dict.
    doctor_details: Callable[[dict], list[str]] | None = None
    doctor_checks: Callable[["Config", str, str, dict], list["Check"]] | None = None
    # `bridge doctor`, beyond each account: checks of the whole config that need the network (Mastodon: do its
    # feeds' article pages credit the account on link cards?); `skip` names accounts with an unusable credential.
    doctor_config_checks: Callable[["Config", set[str]], list["Check"]] | None = None
    # `bridge doctor` (also --offline): does a credential's value have this platform's shape? (label, value) -> Check
    credential_check: Callable[[str, str], "Check"] | None = None
    # `bridge status`: the platform's own fields of an account's report ("handle", "server"...), from the
    # state's account row (State.account).
    status: Callable[[str, "AccountConfig", dict], dict[str, Any]] | None = None
    # `bridge status` as text: the lines those fields add under the account (from its report, a dict).
    status_text: Callable[[dict], list[str]] | None = None
    # `bridge status`/`doctor`: how to resolve posts held with an unknown outcome; None: the generic advice.
    held_posts_fix: Callable[[str, "AccountConfig", dict], str | None] | None = None
    # `bridge login NAME`: gives the click command that gets a credential interactively (called at CLI start).
    login: Callable[[], "click.Command"] | None = None
    # Alerts (bridge/alerts/problems.py): when the account's credential expires and how to renew it, read from the
    # config and state (config, state, account name); None: its credential does not expire, or bridge cannot tell.
    # A platform that renews its credential itself reports the renewed expiry, so the alert fires only when the
    # renewal has been failing long enough to bring the end within the warning window.
    credential_expires: Callable[["Config", "State", str], CredentialExpiry | None] | None = None
    # The way back (bridge/reactions/gatherer.py): reads a posted delivery's replies and counts; None: it cannot.
    reactions: Callable[..., "Thread"] | None = None
    # The credential the gatherer reads with, from the state, the account's name and the configured one: for a
    # platform that keeps a newer credential than the config's (Threads' daily refreshed token). None: the config's.
    reactions_credential: Callable[["State", str, "Secret"], "Secret"] | None = None
    # Threads for long notes (docs/threads-for-notes.md): its payload may carry a thread, either under "thread" for
    # the engine to post part by part (bridge/notethreads.py; its target then has publish_reply, find_reply,
    # delete_reply and edit_reply) or in its own form when its target makes a thread exactly once by itself (Nostr
    # signs and stores every part before sending any). False: a long note is one fitted post.
    long_note_threads: bool = False
    # Top-level commands of the platform's own (`bridge attribution` for Mastodon), each given by a function.
    commands: tuple[Callable[[], "click.Command"], ...] = ()


def lazy(module: str, name: str) -> Callable:
    """`module`.`name`, imported at the first call: a Platform's functions stay unloaded (with their SDK) until a
    command needs them."""

    def call(*args, **kwargs):
        return getattr(import_module(module), name)(*args, **kwargs)

    call.__qualname__ = f"lazy({module}.{name})"
    return call
