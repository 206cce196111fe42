"""`bridge status`: what each feed and account is doing, as a dict (for --json) and as text."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from bridge.config import Config
from bridge.delivery import next_allowed_at
from bridge.permalinks import site_url_fix, unreachable_site
from bridge.redact import redact, register_config_secrets
from bridge.state import State, describe_store
from bridge.unexpected import NOT_ISOLATED, unexpected

log = logging.getLogger("bridge.status")

# Failed posts listed per account, newest first, with their reasons (`bridge retry` re-queues them all).
FAILURES_SHOWN = 5
# Posts listed in recent_posts, newest first, across all accounts.
RECENT_POSTS_SHOWN = 20
GONE_FIX = "the feed is gone (HTTP 410): set its url to the feed's new address (bridge polls it again) or remove it"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):  # a stored time no calendar holds must not hide the rest
        return f"invalid time {timestamp!r}"


def _isolated(name: str, collect) -> dict:
    """One feed's or account's report; an unexpected error there is shown on it, the others are still listed."""
    try:
        return collect()
    except NOT_ISOLATED:
        raise
    except Exception as exc:
        return {"name": name, "error": f"cannot report on it: {unexpected(log, exc, f'reporting on {name}')}"}


def held_posts_fix(name: str, account, info: dict) -> str:
    from bridge.platforms import platform

    fix = platform(account.type).held_posts_fix
    return (fix and fix(name, account, info)) or (
        f"look at the account and, for posts that are not there, `bridge retry --force --account {name}`")


def collect_status(config: Config, state: State, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    register_config_secrets(config)  # rows stored by older versions were not redacted: know what to cut
    pending_by_feed = state.pending_count_by_feed()
    websub = {} if "0007_websub" in state.pending_migrations() else {row.feed: row for row in state.websub_rows()}
    feeds = [_isolated(feed.name, lambda feed=feed: _feed_status(state, feed, pending_by_feed)
                       | {"websub": websub_status(config, websub.get(feed.name), now)}) for feed in config.feeds]
    counts = state.delivery_counts()
    recent: dict[str, list] = {name: [] for name in config.accounts}
    reactions = state.reaction_totals()
    accounts = [_isolated(name, lambda name=name, account=account: _account_status(config, state, name, account, counts,
                                                                                   now, recent)
                          | {"reactions": reactions.get(name)})
                for name, account in config.accounts.items()]
    return {"state": describe_store(config), "feeds": feeds, "accounts": accounts,
            "recent_posts": _recent_posts(config, recent)}


def _recent_posts(config: Config, recent: dict[str, list]) -> list[dict]:
    """The newest posts of all accounts together, newest first."""
    posts = sorted((post for posts in recent.values() for post in posts),
                   key=lambda post: post.delivery.posted_at or 0, reverse=True)[:RECENT_POSTS_SHOWN]
    return [{"account": post.delivery.account, "platform": config.accounts[post.delivery.account].type,
             "feed": post.delivery.feed, "title": post.title, "link": post.delivery.link,
             "posted_at": _iso(post.delivery.posted_at), "url": post.delivery.remote_url}
            for post in posts]


def _feed_status(state: State, feed, pending_by_feed: dict) -> dict:
    row = state.get_feed(feed.name)
    return {
        "name": feed.name,
        "title": row.title if row else None,
        "url": redact(feed.url),  # a private feed's URL may carry its token (?token=..., user:pass@)
        "polling_url": redact(row.url if row else feed.url),
        "enabled": feed.enabled,
        "accounts": list(feed.accounts),
        "last_check": _iso(row.last_checked_at) if row else None,
        "last_success": _iso(row.last_success_at) if row else None,
        "outcome": (row.last_outcome if row else None) or "never polled",
        "http_status": row.last_status if row else None,
        "entries_known": state.count_entries(feed.name),
        "pending_deliveries": pending_by_feed.get(feed.name, 0),
        "error": redact(row.last_error) if row else None,
        "warning": _unreachable_warning(state, feed),
        "deletes_warning": row.deletes_warning if row else None,  # vanished entries not followed (bridge/deletes.py)
        "consecutive_errors": row.error_count if row else 0,
        "gone": bool(row and row.gone),
        "fix": GONE_FIX if row and row.gone else None,
        "next_poll": (None if row and row.gone else _iso(row.next_poll_at) if row and row.next_poll_at else "now"),
    }


def _unreachable_warning(state: State, feed) -> str | None:
    """The fix for a feed whose newest entry has a permalink readers cannot open (see bridge/permalinks.py)."""
    site = unreachable_site(state.newest_link(feed.name), feed.url)
    return site_url_fix(site) if site else None


def _account_status(config: Config, state: State, name: str, account, counts: dict, now: float,
                    recent: dict[str, list]) -> dict:
    from bridge.platforms import platform

    info = state.account(name)
    recent[name] = state.recent_posts(name, limit=RECENT_POSTS_SHOWN)
    last = recent[name][0].delivery if recent[name] else None
    allowed = next_allowed_at(config, state, name, now)
    failed = state.deliveries(account=name, state="failed")[-FAILURES_SHOWN:]
    report = {
        "name": name,
        "type": account.type,
        "target": account.server_url,
        "handle": None,  # the platform's own fields (handle, server) are filled in below
        "posted": counts.get((name, "posted"), 0),
        "queued": counts.get((name, "pending"), 0) + counts.get((name, "sending"), 0),
        "failed": counts.get((name, "failed"), 0),
        "filtered": counts.get((name, "filtered"), 0),  # entries its filters or the opt-out kept back
        "deleted": counts.get((name, "deleted"), 0),  # posts deleted with their blog entry (bridge/deletes.py)
        "failures": [{"feed": row.feed, "entry": row.entry_key, "link": row.link, "reason": redact(row.last_error)}
                     for row in reversed(failed)],
        "failures_fix": f"fix the cause given, then `bridge retry --account {name}`" if failed else None,
        "unknown": counts.get((name, "unknown"), 0),
        "unknown_fix": held_posts_fix(name, account, info) if counts.get((name, "unknown")) else None,
        "server": None,
        "last_post_url": last.remote_url if last else None,
        "last_post_at": _iso(last.posted_at) if last else None,
        "next_post_allowed": _iso(allowed) if allowed > now else "now",
        "paused": redact(info["paused_reason"]),
        "deferred_until": _iso(info["deferred_until"]) if info["deferred_until"] and info["deferred_until"] > now else None,
    }
    extras = platform(account.type).status
    report.update(extras(name, account, info) if extras else {})
    return report


def websub_status(config: Config, row, now: float) -> dict | None:
    """The feed's WebSub hub and subscription; None when its document names no hub."""
    if row is None or not (row.hub or row.sub_hub):
        return None
    if not config.bridge.public_url:
        state, why = "off", "set [bridge] public_url (and http_listen) to take pushes from the hub"
    elif row.status == "active" and not row.pushing(now):
        state, why = "lapsed", "the lease ended; renewing"
    else:
        state, why = row.status, redact(row.last_error) if row.status == "failed" else None
    return {"hub": redact(row.sub_hub or row.hub), "state": state, "why": why,
            "lease_expires": _iso(row.lease_expires_at), "last_push": _iso(row.last_push_at),
            "ignored_pushes": row.rejected_pushes}


def websub_line(websub: dict) -> str:
    line = (f"    WebSub {websub['hub']}: {websub['state']}; lease until {websub['lease_expires'] or '-'}; "
            f"last push {websub['last_push'] or 'never'}")
    if websub["ignored_pushes"]:
        line += f"; {websub['ignored_pushes']} unsigned or forged push(es) ignored"
    if websub["state"] != "active":
        line += "; polling at the normal interval"
    return line + (f" ({websub['why']})" if websub["why"] else "")


def render_status_text(report: dict) -> str:
    from bridge.platforms import platform

    lines = [f"state: {report['state']}", ""]
    lines.append("FEEDS")
    if not report["feeds"]:
        lines.append("  (none configured)")
    for feed in report["feeds"]:
        if "polling_url" not in feed:  # its report failed (see _isolated)
            lines.append(f"  {feed['name']}: {feed['error']}")
            continue
        head = f"  {feed['name']}  {feed['polling_url']}"
        if feed["polling_url"] != feed["url"]:
            head += f"  (moved from {feed['url']})"
        lines.append(head)
        http = f" HTTP {feed['http_status']}" if feed["http_status"] else ""
        lines.append(
            f"    last check {feed['last_check'] or '-'}: {feed['outcome']}{http}; "
            f"{feed['entries_known']} entries known; {feed['pending_deliveries']} pending; next poll {feed['next_poll'] or 'never (gone)'}"
        )
        if feed["error"]:
            lines.append(f"    error ({feed['consecutive_errors']} in a row): {feed['error']}")
        if feed.get("fix"):
            lines.append(f"    fix: {feed['fix']}")
        if feed.get("deletes_warning"):
            lines.append(f"    DELETES HELD: {feed['deletes_warning']}")
        if feed.get("warning"):
            lines.append(f"    NOT POSTED: {feed['warning']}")
        if feed.get("websub"):
            lines.append(websub_line(feed["websub"]))
    lines.append("")
    lines.append("ACCOUNTS")
    if not report["accounts"]:
        lines.append("  (none configured)")
    for account in report["accounts"]:
        if "type" not in account:  # its report failed (see _isolated)
            lines.append(f"  {account['name']}: {account['error']}")
            continue
        lines.append(f"  {account['name']} ({account['type']}, {account['target']})")
        lines.append(
            f"    posted {account['posted']}, queued {account['queued']}, failed {account['failed']}"
            f"{', left out by filters ' + str(account['filtered']) if account.get('filtered') else ''}"
            f"{', deleted with the blog ' + str(account['deleted']) if account.get('deleted') else ''}; "
            f"last post {account['last_post_url'] or '-'}; next post allowed {account['next_post_allowed']}"
        )
        extras = platform(account["type"]).status_text
        lines.extend(extras(account) if extras else [])
        if account.get("reactions"):
            lines.append("    reactions: " + reactions_line(account["reactions"]))
        if account["unknown"]:
            lines.append(f"    OUTCOME UNKNOWN: {account['unknown']} post(s) held -- an earlier attempt may have "
                         f"posted and bridge cannot look; fix: {account['unknown_fix']}")
        if account["paused"]:
            lines.append(f"    PAUSED: {account['paused']}")
        if account["deferred_until"]:
            lines.append(f"    rate limited until {account['deferred_until']}")
        for failure in account["failures"]:
            lines.append(f"    failed: {failure['link'] or failure['entry']}: {failure['reason']}")
        if account["failures"]:
            lines.append(f"    fix: {account['failures_fix']}")
    return "\n".join(lines)


def reactions_line(totals: dict) -> str:
    """'12 likes, 3 reposts, 1 quote, 7 replies on 4 posts' (the replies as gathered, before hide/block)."""
    from bridge.reactions.document import counts_line

    return counts_line(totals).replace(" · ", ", ") + f" on {totals['posts']} post{'s' if totals['posts'] != 1 else ''}"
