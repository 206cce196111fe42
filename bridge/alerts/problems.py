"""What needs the writer now, read from the state: one Problem per thing to fix, keyed so that the same problem
seen again is recognised (engine.py tells each once). The texts reuse the fixes `bridge status` and `doctor`
show (the pause reasons carry their fix, status.held_posts_fix, permalinks.site_url_fix...).

Events (docs/alerts.md lists them with their texts):
    account_paused   an account's credentials were refused; its posts wait in the queue
    feed_failing     a feed not read for longer than [alerts] feed_failing_after
    feed_gone        a feed answered 410 Gone; bridge stopped polling it
    feed_unreachable new entries not posted: their links point at a host readers cannot open
    post_failed      a post given up on for good
    posts_held       posts held because an earlier attempt may have posted
    queue_long       more posts queued for an account than [alerts] queue_above
    stalled          `bridge run` alive but not polling (watch.py)
    credential_expiring  a credential expires within a week (Platform.credential_expires: Threads' token)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bridge.config import Config, format_duration
from bridge.delivery import failed_post_fix
from bridge.errors import FEED_ERROR_FIX
from bridge.permalinks import site_url_fix, unreachable_site
from bridge.platforms import platform
from bridge.redact import redact
from bridge.state import State
from bridge.status import held_posts_fix

# Warn this long before a credential expires: far inside the 59-60 days Threads' daily refresh keeps ahead, so a
# working refresh is never told, and a week is time enough to log in again.
EXPIRY_WARNING_SECONDS = 7 * 86400.0


@dataclass(frozen=True)
class Problem:
    kind: str
    subject: str  # the feed, the account, the post: what the problem is about
    text: str  # what is wrong and what to do, in one paragraph
    since: float | None = None  # when it began, if the state knows (else: when first seen)
    grace: float = 0.0  # it counts as a problem once it has lasted this long

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"


def current_problems(config: Config, state: State, now: float | None = None) -> list[Problem]:
    now = time.time() if now is None else now
    problems: list[Problem] = []
    for feed in config.feeds:
        if feed.enabled:
            problems += _feed_problems(config, state, feed)
    counts = state.delivery_counts()
    for name, account in config.accounts.items():
        problems += _account_problems(config, state, name, account, counts, now)
    return problems


def _feed_problems(config: Config, state: State, feed) -> list[Problem]:
    row = state.get_feed(feed.name)
    if row is None:
        return []
    if row.gone:
        return [Problem("feed_gone", feed.name, f"feed {feed.name} is gone: {redact(row.last_error)}")]
    found = []
    if row.error_count:
        failing = config.alerts.feed_failing_after
        found.append(Problem(
            "feed_failing", feed.name,
            f"feed {feed.name} has not been read for more than {format_duration(failing)} "
            f"({row.error_count} failure(s) in a row): {redact(row.last_error)}. What to do: {FEED_ERROR_FIX}",
            since=row.last_success_at, grace=failing))
    site = unreachable_site(state.newest_link(feed.name), feed.url)
    if site:
        found.append(Problem("feed_unreachable", feed.name, f"feed {feed.name}: new entries are not posted: {site_url_fix(site)}"))
    return found


def _account_problems(config: Config, state: State, name: str, account, counts: dict, now: float) -> list[Problem]:
    info = state.account(name)
    found = []
    if info["paused_reason"]:
        found.append(Problem("account_paused", name, f"account {name} is paused, its posts wait in the queue: "
                                                     f"{redact(info['paused_reason'])}", since=info["paused_at"]))
    for row in state.deliveries(account=name, state="failed"):
        found.append(Problem("post_failed", f"{name}:{row.id}",
                             f"account {name} gave up on {row.link or row.entry_key}: {redact(row.last_error)}. "
                             f"What to do: {failed_post_fix(name)}"))
    held = counts.get((name, "unknown"), 0)
    if held:
        found.append(Problem("posts_held", name, f"account {name} holds {held} post(s) whose outcome is unknown (an "
                                                 f"earlier attempt may have posted). What to do: "
                                                 f"{held_posts_fix(name, account, info)}"))
    queued = counts.get((name, "pending"), 0) + counts.get((name, "sending"), 0)
    if queued > config.alerts.queue_above:
        found.append(Problem("queue_long", name, f"account {name} has {queued} posts queued (more than "
                                                 f"{config.alerts.queue_above}). What to do: {_queue_fix(name, info, now)}"))
    kind = platform(account.type)
    expiry = kind.credential_expires(config, state, name) if kind.credential_expires else None
    if expiry is not None and expiry.at - now < EXPIRY_WARNING_SECONDS:
        left = round(expiry.at - now)
        when = f"expires in {format_duration(left)}" if left > 0 else f"expired {format_duration(-left)} ago"
        found.append(Problem("credential_expiring", name, f"the {kind.title} credential of account {name} {when} and "
                                                          f"has not been renewed. What to do: {expiry.fix}"))
    return found


def _queue_fix(name: str, info: dict, now: float) -> str:
    if info["deferred_until"] and info["deferred_until"] > now:
        return (f"nothing yet: the server rate-limits the account for {format_duration(round(info['deferred_until'] - now))}; "
                "bridge sends the queue as it allows")
    return ("bridge sends them as posts_per_hour and posts_per_day allow; if the count keeps growing, raise those "
            f"limits for account {name} or look at `bridge status` for a server that does not answer")
